import { and, desc, eq, gte, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { ParticipantStatus } from "./conversations";
import type { KeyRow } from "./keys";
import { conversations, epochKeys, participants } from "./schema/shard";

/* Who takes part in what, within one shard: a user's conversations, a conversation's participants. */

/** The conversation ids and current epochs of every conversation a user is in. */
export async function membershipsOf(
  db: Database,
  userId: number,
): Promise<{ conversationId: number; epoch: number }[]> {
  return db
    .select({ conversationId: conversations.id, epoch: conversations.epoch })
    .from(participants)
    .innerJoin(conversations, eq(conversations.id, participants.conversationId))
    .where(eq(participants.userId, userId));
}

/** The last seq, join time and status of each conversation of `userId` in this shard. */
export async function lastSeqsOfUser(
  db: Database,
  userId: number,
): Promise<{ conversationId: number; lastSeq: number; joinedAt: string; status: ParticipantStatus }[]> {
  return db
    .select({
      conversationId: participants.conversationId,
      lastSeq: conversations.lastSeq,
      joinedAt: participants.joinedAt,
      status: participants.status,
    })
    .from(participants)
    .innerJoin(conversations, eq(conversations.id, participants.conversationId))
    .where(eq(participants.userId, userId));
}

/** SQL: the ids of the conversations a user is in. */
export const conversationsOfUser = (userId: number) =>
  sql`select ${participants.conversationId} from ${participants} where ${participants.userId} = ${userId}`;

/** The users sharing at least one conversation with `userId` (themselves included if they are in one). */
export async function peersOf(db: Database, userId: number): Promise<number[]> {
  const rows = await db
    .selectDistinct({ userId: participants.userId })
    .from(participants)
    .where(sql`${participants.conversationId} in (${conversationsOfUser(userId)})`);
  return rows.map((r) => r.userId);
}

/** The user's participation (their join point), or `undefined` if they are not in the conversation. */
export async function participation(
  db: Database,
  conversationId: number,
  userId: number,
): Promise<{ joinedSeq: number; joinedEpoch: number } | undefined> {
  return db
    .select({ joinedSeq: participants.joinedSeq, joinedEpoch: participants.joinedEpoch })
    .from(participants)
    .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId)))
    .get();
}

/** The user ids of a conversation's participants. */
export async function participantIds(db: Database, conversationId: number): Promise<number[]> {
  const rows = await db
    .select({ userId: participants.userId })
    .from(participants)
    .where(eq(participants.conversationId, conversationId));
  return rows.map((r) => r.userId);
}

export async function callerIsParticipant(db: Database, conversationId: number, userId: number): Promise<boolean> {
  return (await participation(db, conversationId, userId)) !== undefined;
}

/** Every epoch key wrapped for `deviceId` from `fromEpoch` on, newest first. */
export async function keysForDevice(
  db: Database,
  conversationId: number,
  deviceId: number,
  fromEpoch: number,
): Promise<KeyRow[]> {
  return db
    .select()
    .from(epochKeys)
    .where(
      and(
        eq(epochKeys.conversationId, conversationId),
        eq(epochKeys.deviceId, deviceId),
        gte(epochKeys.epoch, fromEpoch),
      ),
    )
    .orderBy(desc(epochKeys.epoch));
}
