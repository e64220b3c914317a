import { and, eq } from "drizzle-orm";
import type { Database } from "../env";
import { inIds } from "./ids";
import { consents } from "./schema";

/** Which of `userIds` have consented to `peerId`: they join what `peerId` puts them in as members. */
export async function consentingTo(db: Database, userIds: number[], peerId: number): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .select({ userId: consents.userId })
    .from(consents)
    .where(and(inIds(consents.userId, userIds), eq(consents.peerId, peerId)));
  return new Set(rows.map((r) => r.userId));
}

/** Records that `userId` accepts contact from each of `peerIds` (idempotent). */
export async function recordConsents(db: Database, userId: number, peerIds: number[]): Promise<void> {
  const createdAt = new Date().toISOString();
  const others = [...new Set(peerIds)].filter((peerId) => peerId !== userId);
  if (others.length === 0) return;
  // D1 binds at most 100 parameters per statement: 3 a row.
  for (let i = 0; i < others.length; i += 30) {
    await db
      .insert(consents)
      .values(others.slice(i, i + 30).map((peerId) => ({ userId, peerId, createdAt })))
      .onConflictDoNothing();
  }
}
