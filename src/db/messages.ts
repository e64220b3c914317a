import { and, asc, desc, eq, getTableColumns, gt, lt, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { HistoryQuery } from "../schemas/messages";
import { attachmentIdsColumn, findUnclaimableAttachments, parseAttachmentIds } from "./attachments";
import { fitsDailyBudget, secondsToNextUtcMidnight, utcDay } from "./daily-bytes";
import { relationProblem, relationTargetQuery } from "./relations";
import { conversations, messages, participants } from "./schema/shard";

export interface NewMessage {
  conversationId: number;
  keyEpoch: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  authTag: Uint8Array;
  associatedData: Uint8Array | null;
  signature: Uint8Array;
  clientMessageId: string | null;
  /** Distinct attachment ids (at most 10), claimed in the same batch; none when omitted. */
  attachmentIds?: number[];
  /** Issue #13: a reply, an edit or a reaction (checked in the INSERT itself, see `relationValid`). */
  relatesTo?: { messageId: number; kind: "reply" | "edit" | "reaction" } | null;
}

export type StoredMessage = typeof messages.$inferSelect;
/** A message row with the ids of the attachments it uses, ascending. */
export type MessageRow = StoredMessage & { attachments: number[] };

/** What a committed message needs after the commit, all read in its own batch. */
export interface Committed {
  kind: "created";
  message: MessageRow;
  /** The conversation's participants at the commit: who to tell (src/realtime/publish.ts). */
  participantIds: number[];
}

export type InsertOutcome = Committed | { kind: "refused" };

/** The daily byte budget a message is charged against: its ciphertext, at `now`'s UTC day. */
export interface ByteCharge {
  budget: number;
  now: Date;
}

export type Refusal =
  | { kind: "notParticipant" }
  | { kind: "invited" }
  | { kind: "duplicate"; message: StoredMessage }
  | { kind: "staleEpoch"; current: number }
  | { kind: "rotationNeeded" }
  | { kind: "unusableAttachments"; attachmentIds: number[] }
  | { kind: "overBudget"; retryAfterSeconds: number }
  | { kind: "badRelation"; message: string }
  | { kind: "raced" };

/**
 * Why the conversation side refused a message (the session side is checked by the caller), in the
 * order of the answers: 403, the idempotent 200, 409 (epoch), 422 (attachments), 429 (budget). None
 * of them any more ("raced"): what refused it changed in the meantime, and a retry may succeed.
 */
export async function whyRefused(
  db: Database,
  message: NewMessage,
  senderId: number,
  charge: ByteCharge,
): Promise<Refusal> {
  const { conversationId } = message;
  const fits = fitsDailyBudget(senderId, message.ciphertext.byteLength, charge.budget, utcDay(charge.now));
  const [[state], duplicates, relation] = await db.batch([
    db
      .select({
        epoch: conversations.epoch,
        rotationNeeded: conversations.rotationNeeded,
        fitsBudget: sql<number>`${fits}`,
        status: participants.status,
      })
      .from(conversations)
      .innerJoin(participants, eq(participants.conversationId, conversations.id))
      .where(and(eq(conversations.id, conversationId), eq(participants.userId, senderId))),
    db
      .select()
      .from(messages)
      .where(
        and(
          eq(messages.conversationId, conversationId),
          eq(messages.senderId, senderId),
          eq(messages.clientMessageId, message.clientMessageId ?? ""),
        ),
      ),
    relationTargetQuery(db, conversationId, message.relatesTo?.messageId ?? 0),
  ]);
  if (!state) return { kind: "notParticipant" };
  if (state.status === "invited") return { kind: "invited" };
  // Idempotency wins over epochs: a retry of a committed message gets its first answer.
  if (message.clientMessageId !== null && duplicates[0]) return { kind: "duplicate", message: duplicates[0] };
  const badRelation = relationProblem(message.relatesTo ?? null, relation[0], senderId);
  if (badRelation) return { kind: "badRelation", message: badRelation };
  if (state.epoch !== message.keyEpoch) return { kind: "staleEpoch", current: state.epoch };
  if (state.rotationNeeded) return { kind: "rotationNeeded" };
  const unusable = await findUnclaimableAttachments(db, {
    attachmentIds: message.attachmentIds ?? [],
    conversationId,
    senderId,
  });
  if (unusable.length > 0) return { kind: "unusableAttachments", attachmentIds: unusable };
  if (!state.fitsBudget) return { kind: "overBudget", retryAfterSeconds: secondsToNextUtcMidnight(charge.now) };
  return { kind: "raced" };
}

const withAttachments = { ...getTableColumns(messages), attachmentIds: attachmentIdsColumn };

function toMessageRow({ attachmentIds, ...row }: StoredMessage & { attachmentIds: string }): MessageRow {
  return { ...row, attachments: parseAttachmentIds(attachmentIds) };
}

/** A page of history from the reader's join on: `before` (or neither) newest first, `after` oldest first. */
export async function listMessages(
  db: Database,
  conversationId: number,
  query: HistoryQuery,
  afterSeq: number,
): Promise<MessageRow[]> {
  const cursor =
    query.after !== undefined
      ? gt(messages.id, query.after)
      : query.before !== undefined
        ? lt(messages.id, query.before)
        : undefined;
  const rows = await db
    .select(withAttachments)
    .from(messages)
    .where(and(eq(messages.conversationId, conversationId), gt(messages.seq, afterSeq), cursor))
    .orderBy(query.after !== undefined ? asc(messages.id) : desc(messages.id))
    .limit(query.limit);
  return rows.map(toMessageRow);
}

/** Messages of a conversation after `afterSeq`, oldest first (used to fill broadcast gaps). */
export async function listMessagesAfterSeq(
  db: Database,
  conversationId: number,
  afterSeq: number,
  limit: number,
): Promise<MessageRow[]> {
  const rows = await db
    .select(withAttachments)
    .from(messages)
    .where(and(eq(messages.conversationId, conversationId), gt(messages.seq, afterSeq)))
    .orderBy(asc(messages.seq))
    .limit(limit);
  return rows.map(toMessageRow);
}

/** Statements that turn every message of `senderId` into a tombstone, for a deleted account. */
export function tombstoneSenderStatement(db: Database, senderId: number) {
  return db
    .update(messages)
    .set({
      nonce: null,
      ciphertext: null,
      authTag: null,
      associatedData: null,
      signature: null,
      senderUsername: null,
      deleted: true,
    })
    .where(eq(messages.senderId, senderId));
}
