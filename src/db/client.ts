import { drizzle } from "drizzle-orm/d1";
import type { Database } from "../env";

/**
 * A Drizzle handle over the D1 binding. No schema is passed: the app uses the query builder only,
 * and a schema would make every handle rebuild Drizzle's relational config (seen in profiles).
 */
export function createDb(d1: D1Database): Database {
  return drizzle(d1);
}
