import type { DrizzleD1Database } from "drizzle-orm/d1";

export type Database = DrizzleD1Database;

export interface AuthenticatedUser {
  userId: number;
  username: string;
  /** Token expiry, seconds since the epoch. */
  exp: number;
}

export interface AppEnv {
  Bindings: Env;
  Variables: { db: Database; user: AuthenticatedUser };
}
