import { and, eq, lt, type SQL, sql } from "drizzle-orm";
import type { Database } from "../env";
import { dailyBytes } from "./schema/shard";

export type Charge = { ok: true; used: number } | { ok: false; retryAfterSeconds: number };

/** The UTC day of `now`, `YYYY-MM-DD`. */
export const utcDay = (now: Date) => now.toISOString().slice(0, 10);

/** Whole seconds from `now` to the next UTC midnight (at least 1). */
export function secondsToNextUtcMidnight(now: Date): number {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((midnight - now.getTime()) / 1000));
}

/**
 * Adds `bytes` to `userId`'s count for today unless that would pass `budget`: one statement, so
 * concurrent uploads cannot both squeeze under the limit. A refused charge adds nothing.
 */
export async function chargeDailyBytes(
  db: Database,
  userId: number,
  bytes: number,
  budget: number,
  now = new Date(),
): Promise<Charge> {
  const refused = { ok: false as const, retryAfterSeconds: secondsToNextUtcMidnight(now) };
  if (bytes > budget) return refused;
  const row = await db
    .insert(dailyBytes)
    .values({ userId, day: utcDay(now), bytes })
    .onConflictDoUpdate({
      target: [dailyBytes.userId, dailyBytes.day],
      set: { bytes: sql`${dailyBytes.bytes} + excluded.bytes` },
      setWhere: sql`${dailyBytes.bytes} + excluded.bytes <= ${budget}`,
    })
    .returning({ bytes: dailyBytes.bytes })
    .get();
  return row ? { ok: true, used: row.bytes } : refused;
}

/** SQL condition: `bytes` more on `day` (`utcDay`) would still fit `userId`'s budget (read inside a write's batch). */
export function fitsDailyBudget(userId: number, bytes: number, budget: number, day: string) {
  return sql`coalesce((select ${dailyBytes.bytes} from ${dailyBytes} where ${and(
    eq(dailyBytes.userId, userId),
    eq(dailyBytes.day, day),
  )}), 0) + ${bytes} <= ${budget}`;
}

/**
 * The statement that adds `bytes` to today's count only if `condition` holds (e.g. "the message was
 * inserted by an earlier statement of this batch"). The batch checked `fitsDailyBudget` in that
 * statement and D1 runs a batch as one transaction, so nothing can pass the budget in between.
 */
export function chargeDailyBytesIf(db: Database, userId: number, bytes: number, day: string, condition: SQL) {
  return db
    .insert(dailyBytes)
    .select(
      db
        .select({
          userId: sql<number>`${userId}`.as("user_id"),
          day: sql<string>`${day}`.as("day"),
          bytes: sql<number>`${bytes}`.as("bytes"),
        })
        .from(sql`(select 1)`)
        .where(condition),
    )
    .onConflictDoUpdate({
      target: [dailyBytes.userId, dailyBytes.day],
      set: { bytes: sql`${dailyBytes.bytes} + excluded.bytes` },
    });
}

/** Drops the counters of days before yesterday (they can no longer refuse anything). */
export async function pruneDailyBytes(db: Database, now = new Date()): Promise<void> {
  const yesterday = utcDay(new Date(now.getTime() - 86_400_000));
  await db.delete(dailyBytes).where(lt(dailyBytes.day, yesterday));
}
