import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import { inIds } from "./ids";
import { consents, participants } from "./schema";

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
 * A statement recording that `userId` accepts contact from each of `peerIds` (idempotent), for the
 * batch of the conversation write that implies it, so both happen or neither. (Consent is account
 * data: once accounts and conversations live in different databases this becomes its own write.)
 */
export function recordConsentsStatement(db: Database, userId: number, peerIds: number[], guard = sql`1`) {
  const createdAt = new Date().toISOString();
  const others = JSON.stringify([...new Set(peerIds)].filter((peerId) => peerId !== userId));
  return db
    .insert(consents)
    .select(
      db
        .select({
          userId: sql<number>`${userId}`.as("user_id"),
          peerId: sql<number>`j.value`.as("peer_id"),
          createdAt: sql<string>`${createdAt}`.as("created_at"),
        })
        .from(sql`json_each(${others}) j`)
        .where(guard),
    )
    .onConflictDoNothing();
}

/** A statement: `userId` accepts contact from whoever added them to `conversationId`. */
export function consentToAdderStatement(db: Database, userId: number, conversationId: number) {
  const createdAt = new Date().toISOString();
  return db
    .insert(consents)
    .select(
      db
        .select({
          userId: participants.userId,
          peerId: sql<number>`${participants.addedBy}`.as("peer_id"),
          createdAt: sql<string>`${createdAt}`.as("created_at"),
        })
        .from(participants)
        .where(
          and(
            eq(participants.conversationId, conversationId),
            eq(participants.userId, userId),
            sql`${participants.addedBy} is not null and ${participants.addedBy} <> ${userId}`,
          ),
        ),
    )
    .onConflictDoNothing();
}
