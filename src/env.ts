import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { Config } from "./config";
import type { Databases } from "./db/shards";
import type { Identity } from "./lib/jwt";

/** A Drizzle handle over D1 (or a D1 session): `$client` is the binding itself, for prebuilt statements. */
export type Database = DrizzleD1Database & { $client: D1Database };

export interface AppEnv {
  Bindings: Env;
  Variables: {
    config: Config;
    dbs: Databases;
    user: Identity;
    deviceStatus: "active" | "pending";
  };
}
