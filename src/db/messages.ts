import { and, asc, desc, eq, gt, lt, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { HistoryQuery } from "../schemas/messages";
import { isParticipant } from "./conversations";
import { onlineInboxesQuery } from "./presence";
import { conversations, messages, users } from "./schema";

export interface NewMessage {
  conversationId: number;
  senderId: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  authTag: Uint8Array;
  associatedData: Uint8Array | null;
  clientMessageId: string | null;
}

export interface StoredMessage extends NewMessage {
  id: number;
  seq: number;
  senderUsername: string;
  createdAt: string;
}

export type InsertOutcome =
  | { kind: "created"; message: StoredMessage; inboxRecipients: number[] }
  | { kind: "duplicate"; message: StoredMessage }
  | { kind: "forbidden" };

const messageColumns = {
  id: messages.id,
  seq: messages.seq,
  conversationId: messages.conversationId,
  senderId: messages.senderId,
  senderUsername: users.username,
  nonce: messages.nonce,
  ciphertext: messages.ciphertext,
  authTag: messages.authTag,
  associatedData: messages.associatedData,
  clientMessageId: messages.clientMessageId,
  createdAt: messages.createdAt,
};

/**
 * Stores a message in one atomic D1 batch (one round trip). The INSERT takes its `seq` from the
 * conversation row and only runs if the sender is a participant; the UPDATE then advances the
 * conversation's `lastSeq`/`lastMessageId`, only if a row was inserted. D1 runs a batch as one
 * transaction and writes one at a time, so seqs are consecutive whatever the concurrency. A repeated
 * `clientMessageId` inserts nothing (ON CONFLICT DO NOTHING), which also covers two racing retries.
 * The batch also reads which participants have an inbox device connected at the moment of the
 * commit: the inboxes to forward it to.
 */
export async function insertMessage(
  db: Database,
  message: NewMessage,
  sender: { username: string },
): Promise<InsertOutcome> {
  const createdAt = new Date().toISOString();
  const { conversationId, senderId } = message;
  const [inserted, , members] = await db.batch([
    db
      .insert(messages)
      .select(
        db
          // Insert-select wants the columns in table order, the id included (NULL picks the next one).
          .select({
            id: sql<number | null>`null`.as("id"),
            conversationId: conversations.id,
            seq: sql<number>`${conversations.lastSeq} + 1`.as("seq"),
            senderId: sql<number>`${senderId}`.as("sender_id"),
            nonce: sql<Uint8Array>`${message.nonce}`.as("nonce"),
            ciphertext: sql<Uint8Array>`${message.ciphertext}`.as("ciphertext"),
            authTag: sql<Uint8Array>`${message.authTag}`.as("auth_tag"),
            associatedData: sql<Uint8Array | null>`${message.associatedData}`.as("associated_data"),
            clientMessageId: sql<string | null>`${message.clientMessageId}`.as("client_message_id"),
            createdAt: sql<string>`${createdAt}`.as("created_at"),
          })
          .from(conversations)
          .where(and(eq(conversations.id, conversationId), isParticipant(conversationId, senderId))),
      )
      .onConflictDoNothing()
      .returning({ id: messages.id, seq: messages.seq }),
    db
      .update(conversations)
      .set({
        lastSeq: sql`${conversations.lastSeq} + 1`,
        lastMessageId: sql`(select max(${messages.id}) from ${messages} where ${messages.conversationId} = ${conversationId})`,
        lastActivityAt: createdAt,
      })
      .where(
        and(
          eq(conversations.id, conversationId),
          sql`${conversations.lastSeq} < (select max(${messages.seq}) from ${messages} where ${messages.conversationId} = ${conversationId})`,
        ),
      ),
    onlineInboxesQuery(db, conversationId),
  ]);
  const row = inserted[0];
  if (row) {
    return {
      kind: "created",
      message: { ...message, id: row.id, seq: row.seq, senderUsername: sender.username, createdAt },
      inboxRecipients: members.map((m) => m.userId),
    };
  }
  if (message.clientMessageId !== null) {
    const existing = await findByClientMessageId(db, conversationId, senderId, message.clientMessageId);
    if (existing) return { kind: "duplicate", message: existing };
  }
  return { kind: "forbidden" };
}

/** The earlier message of an idempotent retry, if the sender is still a participant. */
async function findByClientMessageId(
  db: Database,
  conversationId: number,
  senderId: number,
  clientMessageId: string,
): Promise<StoredMessage | undefined> {
  return db
    .select(messageColumns)
    .from(messages)
    .innerJoin(users, eq(users.id, messages.senderId))
    .where(
      and(
        eq(messages.conversationId, conversationId),
        eq(messages.senderId, senderId),
        eq(messages.clientMessageId, clientMessageId),
        isParticipant(conversationId, senderId),
      ),
    )
    .get();
}

/** A page of history: `before` (or neither) newest first, `after` oldest first. */
export async function listMessages(
  db: Database,
  conversationId: number,
  query: HistoryQuery,
): Promise<StoredMessage[]> {
  const cursor =
    query.after !== undefined
      ? gt(messages.id, query.after)
      : query.before !== undefined
        ? lt(messages.id, query.before)
        : undefined;
  return db
    .select(messageColumns)
    .from(messages)
    .innerJoin(users, eq(users.id, messages.senderId))
    .where(and(eq(messages.conversationId, conversationId), cursor))
    .orderBy(query.after !== undefined ? asc(messages.id) : desc(messages.id))
    .limit(query.limit);
}

/** Messages of a conversation after `afterSeq`, oldest first (used to fill broadcast gaps). */
export async function listMessagesAfterSeq(
  db: Database,
  conversationId: number,
  afterSeq: number,
  limit: number,
): Promise<StoredMessage[]> {
  return db
    .select(messageColumns)
    .from(messages)
    .innerJoin(users, eq(users.id, messages.senderId))
    .where(and(eq(messages.conversationId, conversationId), gt(messages.seq, afterSeq)))
    .orderBy(asc(messages.seq))
    .limit(limit);
}
