import { customType } from "drizzle-orm/sqlite-core";

/** A BLOB column read and written as `Uint8Array`, whatever shape the driver hands back. */
export const bytes = customType<{ data: Uint8Array; driverData: ArrayBuffer | Uint8Array | number[] }>({
  dataType: () => "blob",
  toDriver: (value) => value,
  fromDriver: (value) => (value instanceof Uint8Array ? value : new Uint8Array(value as ArrayBuffer | number[])),
});
