import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import { messages } from "./schema/shard";

/**
 * Relations (issue #13): a message may be a reply to, an edit of, or a reaction to another message
 * of the same conversation; an edit only of the sender's own message. The server checks the ids and
 * nothing else: what the reply says, the new text and the emoji are ciphertext like any message.
 */
export interface Relation {
  messageId: number;
  kind: "reply" | "edit" | "reaction";
}

/**
 * SQL condition for the message INSERT's WHERE: the relation (if any) is valid at the moment of the
 * write. A refused insert is explained afterwards by `relationProblem` (the failure path only), so
 * an idempotent retry still gets its first answer before anything else is checked.
 */
export function relationValid(conversationId: number, senderId: number, relation: Relation | null) {
  if (relation === null) return sql`1`;
  return sql`exists (select 1 from ${messages} as target where target.id = ${relation.messageId}
    and target.conversation_id = ${conversationId}
    and (${relation.kind} <> 'edit' or target.sender_id = ${senderId}))`;
}

/** The relation's target if it is a message of this conversation (for the 422's reason). */
export function relationTargetQuery(db: Database, conversationId: number, messageId: number) {
  return db
    .select({ senderId: messages.senderId })
    .from(messages)
    .where(and(eq(messages.id, messageId), eq(messages.conversationId, conversationId)));
}

/** Why a relation is refused, or `undefined` if it is fine. */
export function relationProblem(
  relation: Relation | null,
  target: { senderId: number } | undefined,
  senderId: number,
): string | undefined {
  if (relation === null) return undefined;
  if (!target) return "not a message of this conversation";
  if (relation.kind === "edit" && target.senderId !== senderId) return "only your own messages can be edited";
  return undefined;
}
