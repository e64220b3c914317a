import { and, desc, eq, inArray, sql } from "drizzle-orm";
import type { Database } from "../env";
import { conversations, participants, users } from "./schema";

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
  participants: ParticipantSummary[];
  /** The conversation key wrapped for the user this view was read for. */
  encryptedKey: Uint8Array;
}

export interface NewParticipant {
  userId: number;
  username: string;
  encryptedKey: Uint8Array;
}

// D1 binds at most 100 parameters per statement; a participant row takes 4.
const PARTICIPANT_ROWS_PER_STATEMENT = 25;

/** SQL condition: `userId` takes part in `conversationId`. */
export function isParticipant(conversationId: number, userId: number) {
  return sql`exists (select 1 from ${participants} where ${participants.conversationId} = ${conversationId} and ${participants.userId} = ${userId})`;
}

/**
 * Creates the conversation and all its participants in one atomic batch. The participant rows
 * find the new id as `max(id)`: a batch is one transaction and D1 runs writes one at a time.
 */
export async function createConversation(
  db: Database,
  input: { title: string | null; creatorId: number; members: NewParticipant[] },
): Promise<ConversationView> {
  const now = new Date().toISOString();
  const newId = sql<number>`(select max(${conversations.id}) from ${conversations})`;
  const chunks: NewParticipant[][] = [];
  for (let i = 0; i < input.members.length; i += PARTICIPANT_ROWS_PER_STATEMENT) {
    chunks.push(input.members.slice(i, i + PARTICIPANT_ROWS_PER_STATEMENT));
  }
  const [created] = await db.batch([
    db.insert(conversations).values({ title: input.title, createdAt: now, lastActivityAt: now }).returning(),
    ...chunks.map((chunk) =>
      db.insert(participants).values(
        chunk.map((m) => ({
          conversationId: newId,
          userId: m.userId,
          encryptedKey: m.encryptedKey,
          joinedAt: now,
        })),
      ),
    ),
  ]);
  const conversation = created[0]!;
  const creator = input.members.find((m) => m.userId === input.creatorId)!;
  return {
    ...conversation,
    // In the order every later read lists them (joinedAt, then userId), whatever order the request gave.
    participants: input.members
      .map((m) => ({ userId: m.userId, username: m.username, joinedAt: now }))
      .sort((a, b) => a.userId - b.userId),
    encryptedKey: creator.encryptedKey,
  };
}

/** The conversation as `userId` sees it, or `undefined` if they are not in it (or it does not exist). */
export async function findConversationForUser(
  db: Database,
  conversationId: number,
  userId: number,
): Promise<ConversationView | undefined> {
  const [[own], members] = await db.batch([
    db
      .select({ conversation: conversations, encryptedKey: participants.encryptedKey })
      .from(conversations)
      .innerJoin(participants, eq(participants.conversationId, conversations.id))
      .where(and(eq(conversations.id, conversationId), eq(participants.userId, userId))),
    participantsQuery(db, eq(participants.conversationId, conversationId)),
  ]);
  if (!own) return undefined;
  return {
    ...own.conversation,
    encryptedKey: own.encryptedKey,
    participants: members.map(({ conversationId: _, ...p }) => p),
  };
}

/** Every conversation `userId` is in, most recent activity first. */
export async function listConversationsForUser(db: Database, userId: number): Promise<ConversationView[]> {
  const mine = db.select({ id: participants.conversationId }).from(participants).where(eq(participants.userId, userId));
  const [rows, members] = await db.batch([
    db
      .select({ conversation: conversations, encryptedKey: participants.encryptedKey })
      .from(participants)
      .innerJoin(conversations, eq(conversations.id, participants.conversationId))
      .where(eq(participants.userId, userId))
      .orderBy(desc(conversations.lastActivityAt), desc(conversations.id)),
    participantsQuery(db, inArray(participants.conversationId, mine)),
  ]);
  const byConversation = Map.groupBy(members, (m) => m.conversationId);
  return rows.map(({ conversation, encryptedKey }) => ({
    ...conversation,
    encryptedKey,
    participants: (byConversation.get(conversation.id) ?? []).map(({ conversationId: _, ...p }) => p),
  }));
}

function participantsQuery(db: Database, where: ReturnType<typeof eq>) {
  return db
    .select({
      conversationId: participants.conversationId,
      userId: participants.userId,
      username: users.username,
      joinedAt: participants.joinedAt,
    })
    .from(participants)
    .innerJoin(users, eq(users.id, participants.userId))
    .where(where)
    .orderBy(participants.joinedAt, participants.userId);
}

/**
 * Adds `member` if `addedBy` is (still) a participant, in one statement so a concurrent removal of
 * `addedBy` cannot slip in between. Returns the new participant, or `undefined` if `addedBy` is not
 * a participant; throws a unique violation if `member` is already in.
 */
export async function addParticipant(
  db: Database,
  conversationId: number,
  addedBy: number,
  member: NewParticipant,
): Promise<ParticipantSummary | undefined> {
  const [row] = await db
    .insert(participants)
    .select(
      db
        .select({
          conversationId: conversations.id,
          userId: sql<number>`${member.userId}`.as("user_id"),
          encryptedKey: sql<Uint8Array>`${member.encryptedKey}`.as("encrypted_key"),
          joinedAt: sql<string>`${new Date().toISOString()}`.as("joined_at"),
        })
        .from(conversations)
        .where(and(eq(conversations.id, conversationId), isParticipant(conversationId, addedBy))),
    )
    .returning({ userId: participants.userId, joinedAt: participants.joinedAt });
  return row && { userId: row.userId, username: member.username, joinedAt: row.joinedAt };
}

export async function removeParticipant(db: Database, conversationId: number, userId: number): Promise<boolean> {
  const rows = await db
    .delete(participants)
    .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId)))
    .returning({ userId: participants.userId });
  return rows.length > 0;
}

/** The conversation's last seq if `userId` takes part in it; `undefined` otherwise. One query. */
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

export async function callerIsParticipant(db: Database, conversationId: number, userId: number): Promise<boolean> {
  const row = await db
    .select({ one: sql<number>`1` })
    .from(participants)
    .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId)))
    .get();
  return row !== undefined;
}
