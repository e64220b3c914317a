import { expect } from "vitest";
import { sendMessage, type TestUser } from "./api";
import { countInShards, shardD1Of } from "./databases";

/**
 * POST /messages with `attachments` (under `keyEpoch`, 1 unless given); the new message's id, or
 * null when it was refused (then asserted to be the 422 naming unusable attachments).
 */
export async function postWithAttachments(
  sender: TestUser,
  conversationId: number,
  attachments: number[],
  keyEpoch = 1,
): Promise<number | null> {
  const { status, body } = await sendMessage(sender, conversationId, { attachments, keyEpoch });
  if (status === 201) return body.messageId;
  expect(status).toBe(422);
  expect(body.error.details[0].path).toBe("attachments");
  return null;
}

/** The sender's bytes counted today (the daily budget's rows, summed over every shard), 0 without one. */
export async function bytesToday(userId: number): Promise<number> {
  const day = new Date().toISOString().slice(0, 10);
  return countInShards(
    "select coalesce(sum(bytes), 0) as n from daily_bytes where user_id = ? and day = ?",
    userId,
    day,
  );
}

/** How many messages a conversation holds. */
export async function messageCount(conversationId: number): Promise<number> {
  return (await shardD1Of(conversationId)
    .prepare("select count(*) as n from messages where conversation_id = ?")
    .bind(conversationId)
    .first<number>("n"))!;
}
