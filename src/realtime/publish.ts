import type { Context } from "hono";
import type { MessageResponse, ServerFrame } from "../../contract";
import type { ConversationView, NewParticipant, ParticipantSummary } from "../db/conversations";
import type { AppEnv } from "../env";
import { presentConversation } from "../presenters";
import type { MembershipFrame } from "./frames";
import { attempt, BACKOFF_MS } from "./retry";

/**
 * The seam between the REST routes and the realtime objects. Everything here runs after the
 * commit and never changes the HTTP answer: a failure is logged (ids only, never tokens or
 * ciphertext) and clients recover what they missed with `after`.
 */
const room = (env: Env, conversationId: number) => env.CONVERSATION_ROOM.getByName(String(conversationId));
const inbox = (env: Env, userId: number) => env.USER_INBOX.getByName(String(userId));

function logFailure(what: string, conversationId: number) {
  return (err: unknown) =>
    console.error(`${what} failed for conversation ${conversationId}: ${err instanceof Error ? err.name : "error"}`);
}

/**
 * A committed message: to the conversation's room, which orders it and forwards it to the inboxes
 * of `inboxRecipients` (participants with an inbox device connected at the commit). A failed call
 * is retried (the room's sequencer drops a repeat): if it carried the last message of a burst, no later message would reveal the gap.
 * A fresh stub per attempt, since a failed call can leave a stub broken.
 */
export function publishMessage(c: Context<AppEnv>, message: MessageResponse, inboxRecipients: number[]): void {
  c.executionCtx.waitUntil(
    attempt([0, ...BACKOFF_MS], () => room(c.env, message.conversationId).publish(message, inboxRecipients)).catch(
      logFailure("broadcast", message.conversationId),
    ),
  );
}

/** A new conversation: each member's inbox gets it with that member's own wrapped key. */
export function publishConversationCreated(
  c: Context<AppEnv>,
  conversation: ConversationView,
  members: NewParticipant[],
): void {
  for (const member of members) {
    const frame: ServerFrame = {
      type: "conversationCreated",
      data: presentConversation({ ...conversation, encryptedKey: member.encryptedKey }),
    };
    const joinedAt = conversation.participants.find((p) => p.userId === member.userId)?.joinedAt;
    c.executionCtx.waitUntil(
      inbox(c.env, member.userId)
        .deliverEvent(frame, conversation.id, conversation.lastSeq, joinedAt)
        .catch(logFailure("inbox event", conversation.id)),
    );
  }
}

export interface MembershipUpdate {
  type: "participantAdded" | "participantRemoved";
  conversationId: number;
  member: Pick<ParticipantSummary, "userId" | "username"> & { encryptedKey?: Uint8Array };
  by: number;
}

/**
 * A participant added or removed. The room call is awaited, so that when the answer arrives the
 * removed user's sockets are already closed; `conversation` is the view that lists everyone
 * concerned (before a removal, after an addition), with the `joinedAt` of each membership, which
 * lets an inbox tell a late removal of an earlier membership from a current one.
 */
export async function publishMembership(
  c: Context<AppEnv>,
  change: MembershipUpdate,
  conversation: ConversationView,
): Promise<void> {
  const { type, conversationId, member, by } = change;
  const frame: MembershipFrame = {
    type,
    data: { conversationId, userId: member.userId, username: member.username, by },
  };
  for (const p of conversation.participants) {
    const joined = type === "participantAdded" && p.userId === member.userId && member.encryptedKey;
    const event: ServerFrame = joined
      ? { type: "conversationCreated", data: presentConversation({ ...conversation, encryptedKey: joined }) }
      : frame;
    c.executionCtx.waitUntil(
      inbox(c.env, p.userId)
        .deliverEvent(event, conversationId, conversation.lastSeq, p.joinedAt)
        .catch(logFailure("inbox event", conversationId)),
    );
  }
  const removedUserId = type === "participantRemoved" ? member.userId : undefined;
  const joinedAt = conversation.participants.find((p) => p.userId === member.userId)?.joinedAt;
  const call = () => room(c.env, conversationId).membership({ frame, removedUserId, joinedAt });
  // A removed user's sockets must not stay open: a failed call is retried, after the answer.
  await call().catch((err) => {
    logFailure("membership broadcast", conversationId)(err);
    c.executionCtx.waitUntil(attempt(BACKOFF_MS, call).catch(logFailure("membership broadcast retry", conversationId)));
  });
}
