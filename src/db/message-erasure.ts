import { and, asc, eq, isNotNull, lte, min, sql } from "drizzle-orm";
import type { Database } from "../env";
import { chunks } from "./attachments";
import { isParticipant } from "./conversations";
import { inIds } from "./ids";
import { messages, participants } from "./schema/shard";

/**
 * Turning messages into tombstones (issue #13): delete for everyone, and the expiry sweep. The row
 * stays (so `seq` stays gap-free) with `messageId`, `seq`, sender, epoch, `clientMessageId`,
 * `relatesTo` and `expiresAt`; the content columns become NULL, so the ciphertext is gone from
 * storage, not merely hidden.
 */
const erased = { nonce: null, ciphertext: null, authTag: null, associatedData: null, signature: null, deleted: true };

export type DeleteOutcome =
  /** Unknown, or in a conversation the caller is not in: the same answer (nobody learns which messages exist). */
  | { kind: "notVisible" }
  | { kind: "notSender" }
  | { kind: "deleted"; conversationId: number; seq: number; first: boolean; participantIds: number[] };

/** Deletes a message for everyone, if `userId` sent it and still takes part: one batch. */
export async function deleteForEveryone(db: Database, messageId: number, userId: number): Promise<DeleteOutcome> {
  const conversationOf = sql`(select ${messages.conversationId} from ${messages} where ${messages.id} = ${messageId})`;
  const [[found], updated, members] = await db.batch([
    db
      .select({ conversationId: messages.conversationId, senderId: messages.senderId, seq: messages.seq })
      .from(messages)
      .innerJoin(
        participants,
        and(eq(participants.conversationId, messages.conversationId), eq(participants.userId, userId)),
      )
      .where(eq(messages.id, messageId)),
    db
      .update(messages)
      .set(erased)
      .where(
        and(
          eq(messages.id, messageId),
          eq(messages.senderId, userId),
          isParticipant(sql`${messages.conversationId}`, userId),
          // An expired message not swept yet still has its bytes: erase them now too.
          isNotNull(messages.signature),
        ),
      )
      .returning({ id: messages.id }),
    db
      .select({ userId: participants.userId })
      .from(participants)
      .where(sql`${participants.conversationId} = ${conversationOf}`),
  ]);
  if (!found) return { kind: "notVisible" };
  if (found.senderId !== userId) return { kind: "notSender" };
  return {
    kind: "deleted",
    conversationId: found.conversationId,
    seq: found.seq,
    first: updated.length > 0,
    participantIds: members.map((m) => m.userId),
  };
}

const due = (now: string) =>
  and(isNotNull(messages.expiresAt), eq(messages.deleted, false), lte(messages.expiresAt, now));

/**
 * Up to `limit` messages whose `expiresAt` has come and whose bytes are still stored (of one
 * conversation, or of all for the cron's backstop pass), oldest expiry first: one pass of the sweep.
 * A range scan of a partial index that holds only such messages.
 */
export async function dueForErasure(
  db: Database,
  options: { now: string; limit: number; conversationId?: number },
): Promise<number[]> {
  const scope =
    options.conversationId === undefined
      ? due(options.now)
      : and(eq(messages.conversationId, options.conversationId), due(options.now));
  const rows = await db
    .select({ id: messages.id })
    .from(messages)
    .where(scope)
    .orderBy(asc(messages.expiresAt))
    .limit(options.limit);
  return rows.map((r) => r.id);
}

/** Erases the content of these messages (at most IDS_PER_STATEMENT ids per statement, one batch). */
export async function eraseMessages(db: Database, messageIds: number[]): Promise<void> {
  const statements = chunks(messageIds).map((ids) => db.update(messages).set(erased).where(inIds(messages.id, ids)));
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

/** When the next message of a conversation expires (not yet erased), or `null`. */
export async function nextExpiry(db: Database, conversationId: number): Promise<string | null> {
  const [row] = await db
    .select({ at: min(messages.expiresAt) })
    .from(messages)
    .where(
      and(eq(messages.conversationId, conversationId), isNotNull(messages.expiresAt), eq(messages.deleted, false)),
    );
  return row?.at ?? null;
}
