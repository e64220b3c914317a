import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import { inIds } from "./ids";
import { consents } from "./schema/directory";

/** Which of `userIds` have consented to `peerId`: they join what `peerId` puts them in as members. */
export async function consentingTo(db: Database, userIds: number[], peerId: number): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .select({ userId: consents.userId })
    .from(consents)
    .where(and(inIds(consents.userId, userIds), eq(consents.peerId, peerId)));
  return new Set(rows.map((r) => r.userId));
}

/**
 * Records that `userId` accepts contact from each of `peerIds` (idempotent). Written to the directory
 * after the conversation write that implies it (in its shard): if it is lost, the peer's next
 * conversation with them starts as a message request, the cautious side.
 */
export async function recordConsents(db: Database, userId: number, peerIds: number[]): Promise<void> {
  const createdAt = new Date().toISOString();
  const others = JSON.stringify([...new Set(peerIds)].filter((peerId) => peerId !== userId));
  await db
    .insert(consents)
    .select(
      db
        .select({
          userId: sql<number>`${userId}`.as("user_id"),
          peerId: sql<number>`j.value`.as("peer_id"),
          createdAt: sql<string>`${createdAt}`.as("created_at"),
        })
        .from(sql`json_each(${others}) j`)
        .where(sql`1`),
    )
    .onConflictDoNothing();
}

/** `recordConsents` after a committed conversation write: a failure is logged, not answered (see above). */
export async function recordConsentsOrLog(db: Database, userId: number, peerIds: number[]): Promise<void> {
  await recordConsents(db, userId, peerIds).catch((err: unknown) =>
    console.error(`consent not recorded: ${err instanceof Error ? err.name : "error"}`),
  );
}
