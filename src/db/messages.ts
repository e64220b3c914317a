import { and, asc, desc, eq, getTableColumns, gt, lt, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { Identity } from "../lib/jwt";
import type { HistoryQuery } from "../schemas/messages";
import {
  type AttachmentClaim,
  attachmentIdsColumn,
  attachmentsClaimable,
  claimAttachments,
  findUnclaimableAttachments,
  justInsertedMessageId,
  parseAttachmentIds,
} from "./attachments";
import { isMember } from "./conversations";
import { senderMayPost } from "./coverage";
import { chargeDailyBytesIf, fitsDailyBudget, secondsToNextUtcMidnight } from "./daily-bytes";
import { relationProblem, relationTargetQuery, relationValid } from "./relations";
import { conversations, messages, participants } from "./schema/shard";
import { nextShardId } from "./shards";

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

/** For callers that bypass the route (test fixtures): still counted, never refused. */
const UNLIMITED = (): ByteCharge => ({ budget: Number.MAX_SAFE_INTEGER, now: new Date() });

/**
 * Stores a message in one atomic D1 batch (one round trip). The INSERT takes its `seq` from the
 * conversation row and only runs if everything the contract asks of a sender holds at that very
 * moment: the session is alive and its device active (so a revoked token is refused without a
 * round trip of its own), the sender takes part, `keyEpoch` is the current epoch and it needs no
 * rotation, every attachment is still the sender's, of this conversation and unused, and the
 * ciphertext still fits the sender's daily byte budget. Then, only if a row was inserted, the
 * attachments are linked to it, the ciphertext's bytes are charged, and `lastSeq`/`lastMessageId`
 * advance. D1 runs a batch as one transaction and writes one at a time, so seqs are consecutive, two
 * messages racing for one attachment cannot both commit, and two racing for the budget's last bytes
 * cannot both pass. A repeated `clientMessageId` inserts nothing (ON CONFLICT DO NOTHING), which
 * also covers two racing retries. The batch also reads the participants, for the delivery after it.
 * Everything here lives in the conversation's shard (`shard`), the sender's session and device as
 * the shard's mirror knows them (src/db/mirror.ts).
 *
 * Nothing inserted: the caller finds out why with `whyRefused` (the failure path only).
 */
export async function insertMessage(
  db: Database,
  shard: number,
  message: NewMessage,
  sender: Identity,
  charge: ByteCharge = UNLIMITED(),
): Promise<InsertOutcome> {
  const createdAt = charge.now.toISOString();
  const { conversationId } = message;
  const attachmentIds = message.attachmentIds ?? [];
  const claim: AttachmentClaim = { attachmentIds, conversationId, senderId: sender.userId };
  const bytes = message.ciphertext.byteLength;
  const justInserted = justInsertedMessageId(conversationId, sender.userId);
  const insert = db
    .insert(messages)
    .select(
      db
        // Insert-select wants the columns in table order, the id included.
        .select({
          id: sql<number>`${nextShardId(messages, messages.id, shard)}`.as("id"),
          conversationId: conversations.id,
          seq: sql<number>`${conversations.lastSeq} + 1`.as("seq"),
          senderId: sql<number>`${sender.userId}`.as("sender_id"),
          senderUsername:
            sql<string>`(select ${participants.username} from ${participants} where ${participants.conversationId} = ${conversationId} and ${participants.userId} = ${sender.userId})`.as(
              "sender_username",
            ),
          senderDeviceId: sql<number>`${sender.deviceId}`.as("sender_device_id"),
          keyEpoch: sql<number>`${message.keyEpoch}`.as("key_epoch"),
          nonce: sql<Uint8Array>`${message.nonce}`.as("nonce"),
          ciphertext: sql<Uint8Array>`${message.ciphertext}`.as("ciphertext"),
          authTag: sql<Uint8Array>`${message.authTag}`.as("auth_tag"),
          associatedData: sql<Uint8Array | null>`${message.associatedData}`.as("associated_data"),
          signature: sql<Uint8Array>`${message.signature}`.as("signature"),
          clientMessageId: sql<string | null>`${message.clientMessageId}`.as("client_message_id"),
          deleted: sql<boolean>`0`.as("deleted"),
          createdAt: sql<string>`${createdAt}`.as("created_at"),
          relatesToId: sql<number | null>`${message.relatesTo?.messageId ?? null}`.as("relates_to_id"),
          relatesToKind: sql<"reply" | "edit" | "reaction" | null>`${message.relatesTo?.kind ?? null}`.as(
            "relates_to_kind",
          ),
          // Disappearing messages: the conversation's TTL at the moment of the commit.
          expiresAt: sql<
            string | null
          >`case when ${conversations.messageTtlSeconds} is null then null else strftime('%Y-%m-%dT%H:%M:%fZ', ${createdAt}, '+' || ${conversations.messageTtlSeconds} || ' seconds') end`.as(
            "expires_at",
          ),
        })
        .from(conversations)
        .where(
          and(
            eq(conversations.id, conversationId),
            eq(conversations.epoch, message.keyEpoch),
            eq(conversations.rotationNeeded, false),
            isMember(conversationId, sender.userId),
            senderMayPost(sender),
            relationValid(conversationId, sender.userId, message.relatesTo ?? null),
            attachmentsClaimable(claim),
            fitsDailyBudget(sender.userId, bytes, charge.budget, charge.now),
          ),
        ),
    )
    .onConflictDoNothing()
    .returning();
  // Both need the new message as `seq = lastSeq + 1`: before the UPDATE below.
  const claimed = claimAttachments(db, claim);
  const charged = chargeDailyBytesIf(db, sender.userId, bytes, charge.now, sql`${justInserted} is not null`);
  const advance = db
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
    );
  const [inserted, , , , members] = await db.batch([
    insert,
    claimed,
    charged,
    advance,
    db
      .select({ userId: participants.userId })
      .from(participants)
      .where(eq(participants.conversationId, conversationId)),
  ]);
  const row = inserted[0];
  if (!row) return { kind: "refused" };
  return {
    kind: "created",
    message: { ...row, attachments: [...attachmentIds].sort((a, b) => a - b) },
    participantIds: members.map((m) => m.userId),
  };
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
  const fits = fitsDailyBudget(senderId, message.ciphertext.byteLength, charge.budget, charge.now);
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
