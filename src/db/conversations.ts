import { and, desc, eq, gte, inArray, sql } from "drizzle-orm";
import type { Database } from "../env";
import { coverageMismatch } from "./coverage";
import { insertKeysStatements, type KeyRow, type WrappedKey } from "./keys";
import { sharedLastReadSql, unreadCountSql } from "./read-state";
import { conversations, epochKeys, epochs, participants } from "./schema/shard";
import { nextShardId } from "./shards";

export type Role = "admin" | "member";
export type ParticipantStatus = "member" | "invited";

export interface ParticipantSummary {
  userId: number;
  username: string;
  joinedAt: string;
  role: Role;
  status: ParticipantStatus;
  /** Their watermark, `null` unless they share read receipts. */
  lastReadSeq: number | null;
}

export interface ConversationView {
  id: number;
  title: string | null;
  createdAt: string;
  lastMessageId: number | null;
  lastSeq: number;
  lastActivityAt: string;
  epoch: number;
  rotationNeeded: boolean;
  messageTtlSeconds: number | null;
  /** The reader's own status. */
  status: ParticipantStatus;
  /** The reader's own watermark, and the exact count of others' live messages after it (and after their join). */
  lastReadSeq: number;
  unreadCount: number;
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

/** A member as they join: their role, and whether they start as a message request. */
export interface Joining extends Member {
  role: Role;
  status: ParticipantStatus;
  /** Their `settings.readReceipts` (shown as `lastReadSeq: 0` or `null` in the answer); default true. */
  shareReceipts?: boolean;
}

// D1 binds at most 100 parameters per statement; a participant row takes 9.
const PARTICIPANT_ROWS_PER_STATEMENT = 11;

/** SQL condition: `userId` takes part in `conversationId` (invited included). */
export function isParticipant(conversationId: number | ReturnType<typeof sql>, userId: number) {
  return sql`exists (select 1 from ${participants} where ${participants.conversationId} = ${conversationId} and ${participants.userId} = ${userId})`;
}

/** SQL condition: `userId` is a member of `conversationId` who accepted it (may post, add, rotate). */
export function isMember(conversationId: number | ReturnType<typeof sql>, userId: number) {
  return sql`exists (select 1 from ${participants} where ${participants.conversationId} = ${conversationId} and ${participants.userId} = ${userId} and ${participants.status} = 'member')`;
}

/**
 * Creates the conversation, its participants, epoch 1 and its keys in one atomic batch in shard
 * `shard`. Rows find the new id as `max(id)`: a batch is one transaction and D1 runs writes one at a
 * time. The last statement flags rotation if a device changed between the caller's read and this commit.
 */
export async function createConversation(
  db: Database,
  shard: number,
  input: { title: string | null; by: { userId: number; deviceId: number }; members: Joining[]; keys: WrappedKey[] },
): Promise<ConversationView> {
  const now = new Date().toISOString();
  const newId = sql<number>`(select max(${conversations.id}) from ${conversations})`;
  const chunks: Joining[][] = [];
  for (let i = 0; i < input.members.length; i += PARTICIPANT_ROWS_PER_STATEMENT) {
    chunks.push(input.members.slice(i, i + PARTICIPANT_ROWS_PER_STATEMENT));
  }
  const [created] = await db.batch([
    db
      .insert(conversations)
      .values({
        id: nextShardId(conversations, conversations.id, shard),
        title: input.title,
        createdAt: now,
        lastActivityAt: now,
      })
      .returning(),
    ...chunks.map((chunk) =>
      db.insert(participants).values(
        chunk.map((m) => ({
          conversationId: newId,
          userId: m.userId,
          username: m.username,
          joinedAt: now,
          role: m.role,
          status: m.status,
          addedBy: input.by.userId,
        })),
      ),
    ),
    db.insert(epochs).values({
      conversationId: newId,
      epoch: 1,
      createdBy: input.by.userId,
      createdByDevice: input.by.deviceId,
      commitId: crypto.randomUUID(),
      createdAt: now,
    }),
    ...insertKeysStatements(db, {
      conversationId: newId,
      epoch: 1,
      keys: input.keys,
      by: input.by,
      guard: sql`1`,
      createdAt: now,
    }),
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
    status: "member",
    lastReadSeq: 0,
    unreadCount: 0,
    participants: input.members
      .map((m) => ({
        userId: m.userId,
        username: m.username,
        joinedAt: now,
        role: m.role,
        status: m.status,
        lastReadSeq: m.shareReceipts === false ? null : 0,
      }))
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

/** The columns of a conversation as one participant reads it: the row, their join point and their read state. */
const readerColumns = () => ({
  conversation: conversations,
  joinedSeq: participants.joinedSeq,
  joinedEpoch: participants.joinedEpoch,
  status: participants.status,
  lastReadSeq: participants.lastReadSeq,
  unreadCount: unreadCountSql(new Date().toISOString()),
});

type ReaderRow = {
  conversation: typeof conversations.$inferSelect;
  joinedSeq: number;
  joinedEpoch: number;
  status: ParticipantStatus;
  lastReadSeq: number;
  unreadCount: number;
};

/** A reader's row, the conversation's participants and the reader's device key, as one view. */
function assembleView(
  own: ReaderRow,
  members: Awaited<ReturnType<typeof participantsQuery>>,
  key: ConversationView["key"],
): ConversationView {
  const { conversation, ...reader } = own;
  return {
    ...conversation,
    ...reader,
    key,
    participants: members.map(({ conversationId: _, ...p }) => p),
  };
}

/** The statements that read a conversation as a user's device sees it (see `viewFrom`), for a batch of one's own. */
export function conversationViewStatements(
  db: Database,
  conversationId: number,
  reader: { userId: number; deviceId: number },
) {
  return [
    db
      .select(readerColumns())
      .from(conversations)
      .innerJoin(participants, eq(participants.conversationId, conversations.id))
      .where(and(eq(conversations.id, conversationId), eq(participants.userId, reader.userId))),
    participantsQuery(db, eq(participants.conversationId, conversationId)),
    currentKeysOf(db, and(eq(epochKeys.deviceId, reader.deviceId), eq(epochKeys.conversationId, conversationId))!),
  ] as const;
}

type ViewRows = readonly [
  Awaited<ReturnType<typeof conversationViewStatements>[0]>,
  Awaited<ReturnType<typeof conversationViewStatements>[1]>,
  Awaited<ReturnType<typeof conversationViewStatements>[2]>,
];

/** The view from the results of `conversationViewStatements`; `undefined` if the reader is not in it. */
export function viewFrom([[own], members, [key]]: ViewRows): ConversationView | undefined {
  if (!own) return undefined;
  return assembleView(own, members, key?.key ?? null);
}

/** The conversation as a user's device sees it, or `undefined` if the user is not in it (or it does not exist). */
export async function findConversationForUser(
  db: Database,
  conversationId: number,
  reader: { userId: number; deviceId: number },
): Promise<ConversationView | undefined> {
  return viewFrom(await db.batch(conversationViewStatements(db, conversationId, reader)));
}

/** Where a page of the conversation list starts: after this (activity, id), in list order. */
export interface ListPosition {
  activityAt: string;
  id: number;
}

/**
 * A page of the conversations a user is in, most recent activity first, with keys for the reader's
 * device: one batch (one round trip) however many conversations the user has, since the page's ids
 * are a subquery of the two reads that follow it. Each row's unread count is a correlated COUNT in
 * the first read, not a query per conversation. `next` is where the following page starts.
 */
export async function listConversationsForUser(
  db: Database,
  reader: { userId: number; deviceId: number },
  page: { limit: number; after?: ListPosition } = { limit: 1000 },
): Promise<{ conversations: ConversationView[]; next: ListPosition | null }> {
  const after = page.after;
  const inOrder = and(
    eq(participants.userId, reader.userId),
    after
      ? sql`(${conversations.lastActivityAt} < ${after.activityAt} or (${conversations.lastActivityAt} = ${after.activityAt} and ${conversations.id} < ${after.id}))`
      : undefined,
  );
  const pageIds = db
    .select({ id: participants.conversationId })
    .from(participants)
    .innerJoin(conversations, eq(conversations.id, participants.conversationId))
    .where(inOrder)
    .orderBy(desc(conversations.lastActivityAt), desc(conversations.id))
    .limit(page.limit);
  const [rows, members, keys] = await db.batch([
    db
      .select(readerColumns())
      .from(participants)
      .innerJoin(conversations, eq(conversations.id, participants.conversationId))
      .where(inOrder)
      .orderBy(desc(conversations.lastActivityAt), desc(conversations.id))
      .limit(page.limit + 1),
    participantsQuery(db, inArray(participants.conversationId, pageIds)),
    currentKeysOf(db, and(eq(epochKeys.deviceId, reader.deviceId), inArray(epochKeys.conversationId, pageIds))!),
  ]);
  const byConversation = Map.groupBy(members, (m) => m.conversationId);
  const keyByConversation = new Map(keys.map((k) => [k.key.conversationId, k.key]));
  const views = rows
    .slice(0, page.limit)
    .map((row) =>
      assembleView(
        row,
        byConversation.get(row.conversation.id) ?? [],
        keyByConversation.get(row.conversation.id) ?? null,
      ),
    );
  const last = rows[page.limit - 1]?.conversation;
  const next = rows.length > page.limit && last ? { activityAt: last.lastActivityAt, id: last.id } : null;
  return { conversations: views, next };
}

function participantsQuery(db: Database, where: ReturnType<typeof eq>) {
  return db
    .select({
      conversationId: participants.conversationId,
      userId: participants.userId,
      username: participants.username,
      joinedAt: participants.joinedAt,
      role: participants.role,
      status: participants.status,
      lastReadSeq: sharedLastReadSql(),
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
