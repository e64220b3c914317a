import type { Context } from "hono";
import { CLOSE, CLOSE_REASON, type MessageResponse, type ServerFrame } from "../../contract";
import type { ConversationView, ParticipantSummary } from "../db/conversations";
import { deliveryTargets } from "../db/delivery";
import type { KeyRow } from "../db/keys";
import { onlineUsers } from "../db/presence";
import type { AppEnv } from "../env";
import { presentConversation } from "../presenters";
import { pushToOfflineDevices } from "../push/offline";
import type { MembershipFrame } from "./frames";
import { attempt, BACKOFF_MS } from "./retry";

/**
 * The seam between the REST routes and the realtime objects. Everything here runs after the
 * commit and never changes the HTTP answer: a failure is logged (ids only, never tokens or
 * ciphertext) and clients recover what they missed with `after`.
 */
const room = (env: Env, conversationId: number) => env.CONVERSATION_ROOM.getByName(String(conversationId));
const inbox = (env: Env, userId: number) => env.USER_INBOX.getByName(String(userId));

function logFailure(what: string, subject: string) {
  return (err: unknown) => console.error(`${what} failed for ${subject}: ${err instanceof Error ? err.name : "error"}`);
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
      logFailure("broadcast", `conversation ${message.conversationId}`),
    ),
  );
}

/**
 * A committed message, after the answer: who among `participantIds` has an inbox device connected
 * and which of their devices could be pushed to (one directory read, after the shard's commit: see
 * `goOnline` and src/db/delivery.ts), then the room with those inboxes, then pushes to devices no
 * socket reaches.
 */
export function deliverMessage(c: Context<AppEnv>, message: MessageResponse, participantIds: number[]): void {
  const delivered = (async () => {
    const { onlineInboxes, pushCandidates } = await deliveryTargets(
      c.var.dbs.directory,
      participantIds,
      message.senderDeviceId,
    );
    publishMessage(c, message, [...onlineInboxes]);
    await pushToOfflineDevices(c.env, {
      conversationId: message.conversationId,
      messageId: message.messageId,
      candidates: pushCandidates,
      onlineInboxes: [...onlineInboxes],
    });
  })();
  c.executionCtx.waitUntil(delivered.catch(logFailure("delivery", `conversation ${message.conversationId}`)));
}

/**
 * Calls `deliver` for each of `userIds` whose inbox has a device connected, off the answer's path:
 * an inbox object with no device has nobody to tell, and waking one per member was the cost.
 */
function toOnlineInboxes(
  c: Context<AppEnv>,
  userIds: number[],
  subject: string,
  deliver: (stub: ReturnType<typeof inbox>, userId: number) => Promise<void>,
): void {
  const delivered = (async () => {
    const online = await onlineUsers(c.var.dbs.directory, [...new Set(userIds)]);
    await Promise.all(
      [...online].map((userId) => deliver(inbox(c.env, userId), userId).catch(logFailure("inbox event", subject))),
    );
  })();
  c.executionCtx.waitUntil(delivered.catch(logFailure("inbox event", subject)));
}

/** The conversation as each of a member's devices sees it: with that device's own key. */
function perDeviceViews(conversation: ConversationView, keys: KeyRow[], deviceIds: number[]) {
  return deviceIds.map((deviceId): [number, ServerFrame] => [
    deviceId,
    {
      type: "conversationCreated",
      data: presentConversation({ ...conversation, key: keys.find((k) => k.deviceId === deviceId) ?? null }),
    },
  ]);
}

/** A new conversation: each member's inbox gets it, each device with its own wrapped key. */
export function publishConversationCreated(
  c: Context<AppEnv>,
  conversation: ConversationView,
  keys: KeyRow[],
  devicesByUser: Map<number, number[]>,
): void {
  const byUser = new Map(conversation.participants.map((p) => [p.userId, p]));
  toOnlineInboxes(c, [...byUser.keys()], `conversation ${conversation.id}`, (stub, userId) => {
    const member = byUser.get(userId)!;
    const view = { ...conversation, key: null, status: member.status };
    const fallback: ServerFrame = { type: "conversationCreated", data: presentConversation(view) };
    const perDevice = perDeviceViews(view, keys, devicesByUser.get(userId) ?? []);
    return stub.deliverEvent(fallback, conversation.id, {
      lastSeq: conversation.lastSeq,
      joinedAt: member.joinedAt,
      perDevice,
    });
  });
}

export interface MembershipUpdate {
  type: "participantAdded" | "participantRemoved";
  conversationId: number;
  member: Pick<ParticipantSummary, "userId" | "username">;
  by: number;
}

/**
 * A participant added or removed. The room call is awaited, so that when the answer arrives the
 * removed user's sockets are already closed; `conversation` is the view that lists everyone
 * concerned (before a removal, after an addition), with the `joinedAt` of each membership, which
 * lets an inbox tell a late removal of an earlier membership from a current one. A newcomer's inbox
 * gets `conversationCreated` instead, each device with its key of the new epoch.
 */
export async function publishMembership(
  c: Context<AppEnv>,
  change: MembershipUpdate,
  conversation: ConversationView,
  newcomer?: { keys: KeyRow[]; deviceIds: number[] },
): Promise<void> {
  const { type, conversationId, member, by } = change;
  const frame: MembershipFrame = {
    type,
    data: { conversationId, userId: member.userId, username: member.username, by },
  };
  const byUser = new Map(conversation.participants.map((p) => [p.userId, p]));
  toOnlineInboxes(c, [...byUser.keys()], `conversation ${conversationId}`, (stub, userId) => {
    const p = byUser.get(userId)!;
    const options = { lastSeq: conversation.lastSeq, joinedAt: p.joinedAt };
    if (!(type === "participantAdded" && userId === member.userId && newcomer)) {
      return stub.deliverEvent(frame, conversationId, options);
    }
    const view = { ...conversation, key: null, status: p.status };
    return stub.deliverEvent({ type: "conversationCreated", data: presentConversation(view) }, conversationId, {
      ...options,
      perDevice: perDeviceViews(view, newcomer.keys, newcomer.deviceIds),
    });
  });
  const removedUserId = type === "participantRemoved" ? member.userId : undefined;
  const joinedAt = conversation.participants.find((p) => p.userId === member.userId)?.joinedAt;
  const call = () => room(c.env, conversationId).membership({ frame, removedUserId, joinedAt });
  // A removed user's sockets must not stay open: a failed call is retried, after the answer.
  await call().catch((err) => {
    logFailure("membership broadcast", `conversation ${conversationId}`)(err);
    c.executionCtx.waitUntil(
      attempt(BACKOFF_MS, call).catch(logFailure("membership broadcast retry", `conversation ${conversationId}`)),
    );
  });
}

/** `epochChanged` to the conversation's sockets and its participants' inboxes. */
export function publishEpochChanged(
  c: Context<AppEnv>,
  data: { conversationId: number; epoch: number; by: { userId: number; deviceId: number } },
  participantIds: number[],
): void {
  const frame: ServerFrame = { type: "epochChanged", data };
  c.executionCtx.waitUntil(
    room(c.env, data.conversationId)
      .broadcast(frame)
      .catch(logFailure("epoch event", `conversation ${data.conversationId}`)),
  );
  toOnlineInboxes(c, participantIds, `conversation ${data.conversationId}`, (stub) =>
    stub.deliverEvent(frame, data.conversationId, {}),
  );
}

/**
 * A conversation event that is not a message (`messageDeleted`, `settingsChanged`, `read`): to the
 * conversation's sockets and to the connected inboxes of `userIds`. With `onlyUserId`, the room
 * sends it to that user's sockets only (a `read` of someone who does not share receipts).
 */
export function publishConversationEvent(
  c: Context<AppEnv>,
  frame: ServerFrame & { data: { conversationId: number } },
  userIds: number[],
  options: { onlyUserId?: number | undefined } = {},
): void {
  const { conversationId } = frame.data;
  c.executionCtx.waitUntil(
    room(c.env, conversationId)
      .broadcast(frame, options.onlyUserId)
      .catch(logFailure(`${frame.type} event`, `conversation ${conversationId}`)),
  );
  toOnlineInboxes(c, userIds, `conversation ${conversationId}`, (stub) => stub.deliverEvent(frame, conversationId, {}));
}

/**
 * A message request accepted: the room and the user's inbox update what their sockets may do
 * (`typing` is refused to invited participants without a D1 query: see docs/realtime.md).
 */
export async function publishAccepted(c: Context<AppEnv>, conversationId: number, userId: number): Promise<void> {
  const subject = `conversation ${conversationId}`;
  toOnlineInboxes(c, [userId], subject, (stub) => stub.accepted(conversationId));
  await room(c.env, conversationId).accepted(userId).catch(logFailure("accept event", subject));
}

/** A device or identity event to some users' inbox sockets (optionally only some devices of one user). */
export function publishToInboxes(
  c: Context<AppEnv>,
  frame: ServerFrame,
  userIds: number[],
  deviceIds?: number[],
): void {
  toOnlineInboxes(c, userIds, `a ${frame.type} event`, (stub) => stub.deliverFrame(frame, deviceIds));
}

/**
 * Closes, with 4001, every socket of the given sessions or devices: the user's inbox and the
 * rooms of the conversations they are in. Awaited: the answer goes back once they are closed.
 */
export async function closeSockets(
  c: Context<AppEnv>,
  target: { userId: number; tags: string[]; conversationIds: number[] },
): Promise<void> {
  if (target.tags.length === 0) return;
  const calls = [
    inbox(c.env, target.userId).closeSockets(target.tags, CLOSE.sessionEnded, CLOSE_REASON.sessionEnded),
    ...target.conversationIds.map((id) =>
      room(c.env, id).closeSockets(target.tags, CLOSE.sessionEnded, CLOSE_REASON.sessionEnded),
    ),
  ];
  const results = await Promise.allSettled(calls);
  const failed = results.filter((r) => r.status === "rejected").length;
  if (failed > 0)
    console.error(`closing sockets: ${failed} of ${results.length} objects failed (user ${target.userId})`);
}
