import { and, count, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import { isMember } from "./conversations";
import { inIds } from "./ids";
import { conversations, participants } from "./schema/shard";

/**
 * SQL: make the longest-standing participant admin when none is left (members before message
 * requests, then the earliest join, then the lowest user id).
 */
function successionStatement(db: Database, conversationId: number) {
  const heir = sql`(select ${participants.userId} from ${participants} where ${participants.conversationId} = ${conversationId}
    order by (${participants.status} = 'member') desc, ${participants.joinedAt}, ${participants.userId} limit 1)`;
  return db
    .update(participants)
    .set({ role: "admin" })
    .where(
      and(
        eq(participants.conversationId, conversationId),
        sql`${participants.userId} = ${heir}`,
        sql`not exists (select 1 from ${participants} where ${participants.conversationId} = ${conversationId} and ${participants.role} = 'admin')`,
      ),
    );
}

/**
 * Removes a participant (a removal, a leave or a decline) in one batch: the current epoch needs
 * rotating from then on (they hold its key), and if the last admin left, someone inherits the role.
 * `false` if they were not in it.
 */
export async function removeParticipant(db: Database, conversationId: number, userId: number): Promise<boolean> {
  const [rows] = await db.batch([
    db
      .delete(participants)
      .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId)))
      .returning({ userId: participants.userId }),
    db.update(conversations).set({ rotationNeeded: true }).where(eq(conversations.id, conversationId)),
    successionStatement(db, conversationId),
  ]);
  return rows.length > 0;
}

/**
 * An invited participant accepts: they become a member. Answers who added them, to whom the caller
 * then records their consent (in the directory: src/db/consents.ts).
 */
export async function acceptInvitation(
  db: Database,
  conversationId: number,
  userId: number,
): Promise<{ addedBy: number | null } | undefined> {
  const rows = await db
    .update(participants)
    .set({ status: "member" })
    .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId)))
    .returning({ addedBy: participants.addedBy });
  return rows[0];
}

/** How many conversations each of `userIds` is in (users in none are left out). */
export async function conversationCounts(db: Database, userIds: number[]): Promise<Map<number, number>> {
  if (userIds.length === 0) return new Map();
  const rows = await db
    .select({ userId: participants.userId, n: count() })
    .from(participants)
    .where(inIds(participants.userId, userIds))
    .groupBy(participants.userId);
  return new Map(rows.map((r) => [r.userId, r.n]));
}

/** Who added `userId` to the conversation, and their status in it. */
export async function invitation(
  db: Database,
  conversationId: number,
  userId: number,
): Promise<{ status: "member" | "invited"; addedBy: number | null; role: "admin" | "member" } | undefined> {
  return db
    .select({ status: participants.status, addedBy: participants.addedBy, role: participants.role })
    .from(participants)
    .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId)))
    .get();
}

/**
 * Sets a conversation's disappearing-message TTL, if `userId` is a member who accepted it: the
 * settings of `PUT /conversations/{id}/settings`. `false` if nothing was updated (the caller then
 * tells a non-participant from an invited one with `invitation`).
 */
export async function setMessageTtl(
  db: Database,
  conversationId: number,
  userId: number,
  messageTtlSeconds: number | null,
): Promise<boolean> {
  const rows = await db
    .update(conversations)
    .set({ messageTtlSeconds })
    .where(and(eq(conversations.id, conversationId), isMember(conversationId, userId)))
    .returning({ id: conversations.id });
  return rows.length > 0;
}
