import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import { accountSettings, conversations, messages, participants } from "./schema/shard";

/**
 * Read state (issue #13): one watermark per participant (`participants.last_read_seq`), only ever
 * raised. The unread count is not stored: it is a COUNT over the messages after the watermark,
 * computed inside the same query that reads the conversation (one batch for a whole page of the
 * list, see docs/api.md "Read state" for why a maintained counter was not chosen).
 */

/**
 * SQL: the exact unread count of the participant row in scope (`participants`): messages after
 * both their watermark and their join, sent by someone else, not deleted and not expired at `now`.
 * A range scan of `messages_conversation_seq_unique` over the unread messages only.
 */
export function unreadCountSql(now: string) {
  return sql<number>`(select count(*) from ${messages} as unread
    where unread.conversation_id = ${participants.conversationId}
      and unread.seq > max(${participants.lastReadSeq}, ${participants.joinedSeq})
      and unread.sender_id <> ${participants.userId}
      and unread.deleted = 0
      and (unread.expires_at is null or unread.expires_at > ${now}))`;
}

/**
 * SQL: the participant row's watermark as others may see it: `null` unless that user shares read
 * receipts (the shard's copy of the setting; sharing is the default, as for a new account). The
 * subquery names its columns itself: in the selection of a single-table query Drizzle writes columns
 * unqualified, and a bare `user_id = user_id` would compare the settings row with itself.
 */
export const sharedLastReadSql = () =>
  sql<
    number | null
  >`case when coalesce((select s.read_receipts from ${accountSettings} s where s.user_id = ${participants}.user_id), 1) = 1 then ${participants.lastReadSeq} else null end`;

export type MarkReadOutcome =
  | { kind: "notParticipant" }
  | { kind: "beyondLastSeq"; lastSeq: number }
  | {
      kind: "done";
      /** The watermark moved (a lower or equal `seq` changes nothing, and tells nobody). */
      moved: boolean;
      /** The reader's `settings.readReceipts`: whether others hear of it. */
      shareReceipts: boolean;
      participantIds: number[];
    };

/**
 * Raises the caller's watermark to `seq` in one batch: the UPDATE runs only if `seq` is above the
 * current watermark and not beyond the conversation's `lastSeq` at that moment; the reads after it
 * tell the caller why nothing changed, and who to tell if something did.
 */
export async function markRead(
  db: Database,
  conversationId: number,
  userId: number,
  seq: number,
): Promise<MarkReadOutcome> {
  const [updated, [state], members] = await db.batch([
    db
      .update(participants)
      .set({ lastReadSeq: seq })
      .where(
        and(
          eq(participants.conversationId, conversationId),
          eq(participants.userId, userId),
          sql`${participants.lastReadSeq} < ${seq}`,
          sql`${seq} <= (select ${conversations.lastSeq} from ${conversations} where ${conversations.id} = ${conversationId})`,
        ),
      )
      .returning({ userId: participants.userId }),
    db
      .select({ lastSeq: conversations.lastSeq, shareReceipts: accountSettings.readReceipts })
      .from(participants)
      .innerJoin(conversations, eq(conversations.id, participants.conversationId))
      .leftJoin(accountSettings, eq(accountSettings.userId, participants.userId))
      .where(and(eq(participants.conversationId, conversationId), eq(participants.userId, userId))),
    db
      .select({ userId: participants.userId })
      .from(participants)
      .where(eq(participants.conversationId, conversationId)),
  ]);
  if (!state) return { kind: "notParticipant" };
  if (seq > state.lastSeq) return { kind: "beyondLastSeq", lastSeq: state.lastSeq };
  return {
    kind: "done",
    moved: updated.length > 0,
    shareReceipts: state.shareReceipts ?? true,
    participantIds: members.map((m) => m.userId),
  };
}
