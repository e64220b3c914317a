import { and, asc, eq, inArray, isNotNull, isNull, lt, sql } from "drizzle-orm";
import type { Database } from "../env";
import { attachments, conversations, messages, participants } from "./schema/shard";
import { nextShardId } from "./shards";

/** At most this many ids in one `IN (…)`: D1 binds at most 100 parameters per statement. */
export const IDS_PER_STATEMENT = 90;

/** The R2 key of an attachment's bytes. */
export const attachmentKey = (attachmentId: number) => `attachments/${attachmentId}`;

/** A row for an upload about to be streamed; `size` is set once the bytes are stored. */
export async function createPendingAttachment(
  db: Database,
  shard: number,
  input: { uploaderId: number; conversationId: number },
): Promise<number> {
  const [row] = await db
    .insert(attachments)
    .values({ id: nextShardId(attachments, attachments.id, shard), ...input, createdAt: new Date().toISOString() })
    .returning({ id: attachments.id });
  return row!.id;
}

export async function markAttachmentStored(db: Database, attachmentId: number, size: number): Promise<void> {
  await db.update(attachments).set({ size }).where(eq(attachments.id, attachmentId));
}

/**
 * The size of an attachment `userId` may download, or undefined (unknown, still uploading, or not
 * theirs to read). Unused: its uploader only (still a participant). Used: any current participant
 * who may see the message that uses it, i.e. joined at or before it (`joined_seq < seq`, the rule of
 * history), while it is not a tombstone (its attachments are being erased).
 */
export async function readableAttachmentSize(
  db: Database,
  attachmentId: number,
  userId: number,
): Promise<number | undefined> {
  const row = await db
    .select({ size: attachments.size })
    .from(attachments)
    .innerJoin(
      participants,
      and(eq(participants.conversationId, attachments.conversationId), eq(participants.userId, userId)),
    )
    .leftJoin(messages, eq(messages.id, attachments.usedByMessageId))
    .where(
      and(
        eq(attachments.id, attachmentId),
        isNotNull(attachments.size),
        sql`((${attachments.usedByMessageId} is null and ${attachments.uploaderId} = ${userId})
          or (${messages.id} is not null and ${messages.deleted} = 0 and ${participants.joinedSeq} < ${messages.seq}))`,
      ),
    )
    .get();
  return row?.size ?? undefined;
}

export interface AttachmentClaim {
  attachmentIds: number[];
  conversationId: number;
  senderId: number;
}

/** A claim as SQL values: the distinct ids as one JSON parameter and their count (slots in a prebuilt statement). */
export interface ClaimValues {
  idsJson: string;
  count: number;
  conversationId: number;
  senderId: number;
}

export function claimValues({ attachmentIds, conversationId, senderId }: AttachmentClaim): ClaimValues {
  const ids = [...new Set(attachmentIds)];
  return { idsJson: JSON.stringify(ids), count: ids.length, conversationId, senderId };
}

const claimable = ({ idsJson, conversationId, senderId }: ClaimValues) =>
  and(
    sql`${attachments.id} in (select value from json_each(${idsJson}))`,
    eq(attachments.uploaderId, senderId),
    eq(attachments.conversationId, conversationId),
    isNotNull(attachments.size),
    isNull(attachments.usedByMessageId),
  );

/**
 * The ids of `claim.attachmentIds` that the sender may not attach (unknown, someone else's, another
 * conversation's, still uploading, or already used): the 422 of `POST /messages`. At most 10 ids.
 */
export async function findUnclaimableAttachments(db: Database, claim: AttachmentClaim): Promise<number[]> {
  if (claim.attachmentIds.length === 0) return [];
  const rows = await db
    .select({ id: attachments.id })
    .from(attachments)
    .where(claimable(claimValues(claim)));
  const ok = new Set(rows.map((r) => r.id));
  return [...new Set(claim.attachmentIds)].filter((id) => !ok.has(id));
}

/**
 * SQL condition for the message INSERT's WHERE: every attachment is still claimable at the moment of
 * the write. With it, two messages racing for one attachment cannot both commit: the loser inserts
 * nothing (the route then answers 422 from `findUnclaimableAttachments`).
 */
export function attachmentsClaimable(claim: ClaimValues) {
  return sql`(select count(*) from ${attachments} where ${claimable(claim)}) = ${claim.count}`;
}

/**
 * SQL: the id of the message `senderId` has just inserted into `conversationId` in this batch, or
 * NULL. Valid between the message INSERT and the UPDATE that advances `conversations.last_seq`: the
 * new message is then the one with `seq = last_seq + 1`, which exists only if the INSERT wrote a row
 * (seq is gap-free and `last_seq` is its maximum), so a duplicate or refused message matches nothing.
 */
export const justInsertedMessageId = (conversationId: number, senderId: number) =>
  sql<number | null>`(select ${messages.id} from ${messages}
    where ${messages.conversationId} = ${conversationId} and ${messages.senderId} = ${senderId}
      and ${messages.seq} = (select ${conversations.lastSeq} + 1 from ${conversations} where ${conversations.id} = ${conversationId}))`;

/**
 * The UPDATE that links the attachments to the message written in the same D1 batch. Put it right
 * after the message INSERT and before the UPDATE that advances `conversations.last_seq` (see
 * `justInsertedMessageId`), so a duplicate or refused message claims nothing.
 */
export function claimAttachments(db: Database, claim: ClaimValues) {
  const justInserted = justInsertedMessageId(claim.conversationId, claim.senderId);
  return db
    .update(attachments)
    .set({ usedByMessageId: justInserted })
    .where(and(claimable(claim), sql`${justInserted} is not null`));
}

/**
 * SQL column for a select from `messages`: the ids of the attachments the message uses, as a JSON
 * array (`parseAttachmentIds` reads it). One query for a page of history, no second round trip.
 * Spelled out: Drizzle writes a single-table select's columns unqualified, and an unqualified `id`
 * in the subquery would be the attachment's own.
 */
export const attachmentIdsColumn = sql<string>`(select json_group_array("a"."id") from "attachments" as "a" where "a"."used_by_message_id" = "messages"."id")`;

/** The JSON of `attachmentIdsColumn` as ascending ids. */
export function parseAttachmentIds(json: string | null): number[] {
  const ids = json ? (JSON.parse(json) as number[]) : [];
  return ids.sort((a, b) => a - b);
}

/** Attachment ids per message, for the message presenter's `attachments` field (empty lists omitted). */
export async function attachmentIdsOfMessages(db: Database, messageIds: number[]): Promise<Map<number, number[]>> {
  const byMessage = new Map<number, number[]>();
  for (const ids of chunks(messageIds)) {
    const rows = await db
      .select({ id: attachments.id, messageId: attachments.usedByMessageId })
      .from(attachments)
      .where(inArray(attachments.usedByMessageId, ids))
      .orderBy(asc(attachments.id));
    for (const row of rows) byMessage.set(row.messageId!, [...(byMessage.get(row.messageId!) ?? []), row.id]);
  }
  return byMessage;
}

/** The attachments of `messageIds` (used by message deletion and expiry). */
export async function attachmentIdsUsedBy(db: Database, messageIds: number[]): Promise<number[]> {
  return [...(await attachmentIdsOfMessages(db, messageIds)).values()].flat();
}

/**
 * Every attachment of `userId`'s: those their messages use (tombstones keep `sender_id`) and their
 * uploads no message used yet. For account deletion; both halves go by an index.
 */
export async function attachmentIdsOfUser(db: Database, userId: number): Promise<number[]> {
  const rows = await db
    .select({ id: attachments.id })
    .from(attachments)
    .where(
      sql`${attachments.usedByMessageId} in (select ${messages.id} from ${messages} where ${messages.senderId} = ${userId})
        or (${attachments.usedByMessageId} is null and ${attachments.uploaderId} = ${userId})`,
    );
  return rows.map((r) => r.id);
}

/** Up to `limit` attachment ids that no message used and that were created before `cutoff`, oldest first. */
export async function unusedAttachmentsBefore(db: Database, cutoff: string, limit: number): Promise<number[]> {
  const rows = await db
    .select({ id: attachments.id })
    .from(attachments)
    .where(and(isNull(attachments.usedByMessageId), lt(attachments.createdAt, cutoff)))
    .orderBy(asc(attachments.createdAt))
    .limit(limit);
  return rows.map((r) => r.id);
}

/**
 * Up to `limit` attachments nobody may download any more but still stored: those of deleted
 * (tombstoned) messages, and unused uploads of people no longer in their conversation (a deleted
 * account leaves every conversation). What an interrupted
 * deletion leaves behind, for the cleanup job.
 */
export async function abandonedAttachments(db: Database, limit: number): Promise<number[]> {
  const rows = await db
    .select({ id: attachments.id })
    .from(attachments)
    .where(
      sql`${attachments.usedByMessageId} in (select ${messages.id} from ${messages} where ${messages.deleted} = 1)
        or (${attachments.usedByMessageId} is null and ${attachments.uploaderId} not in (select ${participants.userId} from ${participants} where ${participants.conversationId} = ${attachments.conversationId}))`,
    )
    .orderBy(asc(attachments.id))
    .limit(limit);
  return rows.map((r) => r.id);
}

export async function deleteAttachmentRows(db: Database, attachmentIds: number[]): Promise<void> {
  for (const ids of chunks(attachmentIds)) await db.delete(attachments).where(inArray(attachments.id, ids));
}

export function chunks<T>(items: T[], size = IDS_PER_STATEMENT): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
