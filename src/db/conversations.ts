import { and, desc, eq, gte, inArray, sql } from "drizzle-orm";
import type { Database } from "../env";
import { coverageMismatch } from "./coverage";
import { insertKeysStatements, type KeyRow, type WrappedKey } from "./keys";
import { conversations, epochKeys, epochs, participants } from "./schema";

export interface ParticipantSummary {
  userId: number;
  username: string;
  joinedAt: string;
}

export interface ConversationView {
  id: number;
  title: string | null;
  createdAt: string;
  lastMessageId: number | null;
  lastSeq: number;
  epoch: number;
  rotationNeeded: boolean;
  participants: ParticipantSummary[];
  /** The current epoch's key for the device this view was read for. */
  key: KeyRow | null;
  /** Where the reader's view starts: messages after `joinedSeq`, keys from `joinedEpoch`. */
  joinedSeq: number;
  joinedEpoch: number;
}

export interface Member {
  userId: number;
  username: string;
}

// D1 binds at most 100 parameters per statement; a participant row takes 6.
const PARTICIPANT_ROWS_PER_STATEMENT = 16;

/** SQL condition: `userId` takes part in `conversationId`. */
export function isParticipant(conversationId: number | ReturnType<typeof sql>, userId: number) {
  return sql`exists (select 1 from ${participants} where ${participants.conversationId} = ${conversationId} and ${participants.userId} = ${userId})`;
}

/**
 * Creates the conversation, its participants, epoch 1 and its keys in one atomic batch. Rows find
 * the new id as `max(id)`: a batch is one transaction and D1 runs writes one at a time. The last
 * statement flags rotation if a device changed between the caller's read and this commit.
 */
export async function createConversation(
  db: Database,
  input: { title: string | null; by: { userId: number; deviceId: number }; members: Member[]; keys: WrappedKey[] },
): Promise<ConversationView> {
  const now = new Date().toISOString();
  const newId = sql<number>`(select max(${conversations.id}) from ${conversations})`;
  const chunks: Member[][] = [];
  for (let i = 0; i < input.members.length; i += PARTICIPANT_ROWS_PER_STATEMENT) {
    chunks.push(input.members.slice(i, i + PARTICIPANT_ROWS_PER_STATEMENT));
  }
  const [created] = await db.batch([
    db.insert(conversations).values({ title: input.title, createdAt: now, lastActivityAt: now }).returning(),
    ...chunks.map((chunk) =>
      db
        .insert(participants)
        .values(chunk.map((m) => ({ conversationId: newId, userId: m.userId, username: m.username, joinedAt: now }))),
    ),
    db.insert(epochs).values({
      conversationId: newId,
      epoch: 1,
      createdBy: input.by.userId,
      createdByDevice: input.by.deviceId,
      commitId: crypto.randomUUID(),
      createdAt: now,
    }),
    ...insertKeysStatements(db, { conversationId: newId, epoch: 1, keys: input.keys, by: input.by, guard: sql`1` }),
    db
      .update(conversations)
      .set({ rotationNeeded: true })
      .where(and(eq(conversations.id, newId), coverageMismatch(newId, 1))),
  ]);
  const conversation = created[0]!;
  const own = input.keys.find((k) => k.deviceId === input.by.deviceId);
  return {
    ...conversation,
    // In the order every later read lists them (joinedAt, then userId), whatever order the request gave.
    participants: input.members
      .map((m) => ({ userId: m.userId, username: m.username, joinedAt: now }))
      .sort((a, b) => a.userId - b.userId),
    key: own
      ? {
          ...own,
          conversationId: conversation.id,
          epoch: 1,
          wrappedByUser: input.by.userId,
          wrappedByDevice: input.by.deviceId,
          createdAt: now,
        }
      : null,
    joinedSeq: 0,
    joinedEpoch: 1,
  };
}

/** The current epoch's keys of one device, in the conversations `where` selects. */
const currentKeysOf = (db: Database, where: ReturnType<typeof eq>) =>
  db
    .select({ key: epochKeys })
    .from(epochKeys)
    .innerJoin(
      conversations,
      and(eq(conversations.id, epochKeys.conversationId), eq(conversations.epoch, epochKeys.epoch)),
    )
    .where(where);

/** The conversation as a user's device sees it, or `undefined` if the user is not in it (or it does not exist). */
export async function findConversationForUser(
  db: Database,
  conversationId: number,
  reader: { userId: number; deviceId: number },
): Promise<ConversationView | undefined> {
  const [[own], members, [key]] = await db.batch([
    db
      .select({ conversation: conversations, joinedSeq: participants.joinedSeq, joinedEpoch: participants.joinedEpoch })
      .from(conversations)
      .innerJoin(participants, eq(participants.conversationId, conversations.id))
      .where(and(eq(conversations.id, conversationId), eq(participants.userId, reader.userId))),
    participantsQuery(db, eq(participants.conversationId, conversationId)),
    currentKeysOf(db, and(eq(epochKeys.deviceId, reader.deviceId), eq(epochKeys.conversationId, conversationId))!),
  ]);
  if (!own) return undefined;
  return {
    ...own.conversation,
    joinedSeq: own.joinedSeq,
    joinedEpoch: own.joinedEpoch,
    key: key?.key ?? null,
    participants: members.map(({ conversationId: _, ...p }) => p),
  };
}

/** Every conversation a user is in, most recent activity first, with keys for the reader's device. */
export async function listConversationsForUser(
  db: Database,
  reader: { userId: number; deviceId: number },
): Promise<ConversationView[]> {
  const mine = db
    .select({ id: participants.conversationId })
    .from(participants)
    .where(eq(participants.userId, reader.userId));
  const [rows, members, keys] = await db.batch([
    db
      .select({ conversation: conversations, joinedSeq: participants.joinedSeq, joinedEpoch: participants.joinedEpoch })
      .from(participants)
      .innerJoin(conversations, eq(conversations.id, participants.conversationId))
      .where(eq(participants.userId, reader.userId))
      .orderBy(desc(conversations.lastActivityAt), desc(conversations.id)),
    participantsQuery(db, inArray(participants.conversationId, mine)),
    currentKeysOf(db, and(eq(epochKeys.deviceId, reader.deviceId), inArray(epochKeys.conversationId, mine))!),
  ]);
  const byConversation = Map.groupBy(members, (m) => m.conversationId);
  const keyByConversation = new Map(keys.map((k) => [k.key.conversationId, k.key]));
  return rows.map(({ conversation, joinedSeq, joinedEpoch }) => ({
    ...conversation,
    joinedSeq,
    joinedEpoch,
    key: keyByConversation.get(conversation.id) ?? null,
    participants: (byConversation.get(conversation.id) ?? []).map(({ conversationId: _, ...p }) => p),
  }));
}

function participantsQuery(db: Database, where: ReturnType<typeof eq>) {
  return db
    .select({
      conversationId: participants.conversationId,
      userId: participants.userId,
      username: participants.username,
      joinedAt: participants.joinedAt,
    })
    .from(participants)
    .where(where)
    .orderBy(participants.joinedAt, participants.userId);
}

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

/** Removes a participant; the current epoch needs rotating from then on (they hold its key). */
export async function removeParticipant(db: Database, conversationId: number, userId: number): Promise<boolean> {
  const [rows] = await db.batch([
    db
      .delete(participants)
      .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId)))
      .returning({ userId: participants.userId }),
    db.update(conversations).set({ rotationNeeded: true }).where(eq(conversations.id, conversationId)),
  ]);
  return rows.length > 0;
}

/** The conversation's last seq and the caller's join point if the user takes part in it; `undefined` otherwise. */
export async function lastSeqForParticipant(
  db: Database,
  conversationId: number,
  userId: number,
): Promise<number | undefined> {
  const row = await db
    .select({ lastSeq: conversations.lastSeq })
    .from(conversations)
    .innerJoin(participants, eq(participants.conversationId, conversations.id))
    .where(and(eq(conversations.id, conversationId), eq(participants.userId, userId)))
    .get();
  return row?.lastSeq;
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
