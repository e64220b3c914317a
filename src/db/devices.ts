import { and, asc, eq, ne } from "drizzle-orm";
import type { Database } from "../env";
import { inIds } from "./ids";
import { devices } from "./schema/directory";
import type { DeviceKeys } from "./users";

export type DeviceRow = typeof devices.$inferSelect;

export async function findDevice(db: Database, deviceId: number): Promise<DeviceRow | undefined> {
  return db.select().from(devices).where(eq(devices.id, deviceId)).get();
}

/** A user's devices that are not revoked (pending and active), oldest first. */
export async function listOwnDevices(db: Database, userId: number): Promise<DeviceRow[]> {
  return db
    .select()
    .from(devices)
    .where(and(eq(devices.userId, userId), ne(devices.status, "revoked")))
    .orderBy(asc(devices.id));
}

/** The active devices of some users, by device id. */
export async function activeDevicesOf(db: Database, userIds: number[]): Promise<DeviceRow[]> {
  if (userIds.length === 0) return [];
  return db
    .select()
    .from(devices)
    .where(and(inIds(devices.userId, userIds), eq(devices.status, "active")))
    .orderBy(asc(devices.id));
}

export async function insertPendingDevice(
  db: Database,
  userId: number,
  device: Omit<DeviceKeys, "signature">,
): Promise<DeviceRow> {
  const [row] = await db
    .insert(devices)
    .values({ ...device, userId, status: "pending", createdAt: new Date().toISOString() })
    .returning();
  return row!;
}

export function newActiveDevice(db: Database, userId: number, device: DeviceKeys) {
  return db
    .insert(devices)
    .values({ ...device, userId, status: "active", createdAt: new Date().toISOString() })
    .returning();
}
