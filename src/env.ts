import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { Config } from "./config";
import type { Identity } from "./lib/jwt";

export type Database = DrizzleD1Database;

export interface AppEnv {
  Bindings: Env;
  Variables: { config: Config; db: Database; user: Identity; deviceStatus: "active" | "pending" };
}
