import { type SQL, type SQLWrapper, sql } from "drizzle-orm";

/**
 * `column IN (ids)` with the ids bound as one JSON parameter: D1 binds at most 100 parameters per
 * statement, and a conversation may have 256 participants.
 */
export const inIds = (column: SQLWrapper, ids: readonly number[]): SQL =>
  sql`${column} in (select value from json_each(${JSON.stringify(ids)}))`;
