/**
 * What `read`, `messageDeleted`, `settingsChanged` and `typing` frames change, whether they come on
 * the inbox or on the open conversation's socket (both may deliver the same frame: each change is
 * idempotent), and what a membership change says.
 */
import type { Conversation, MembershipChange, ServerFrame, Typing } from "../../client/index.ts";
import type { MessageList } from "./messages.ts";

export interface EventContext {
  userId: number | undefined;
  /** The open conversation. */
  current: number | undefined;
  conversation(conversationId: number): Conversation | undefined;
  typing(t: Typing): void;
  /** Re-read a conversation (exact unread count). */
  reload(conversationId: number): void;
  messages: MessageList;
  /** The open conversation's disappearing-message setting changed (`by`: "You" or a username). */
  ttlChanged(c: Conversation, by: string): void;
}

export function conversationEvent(frame: ServerFrame, ctx: EventContext): void {
  if (frame.type === "typing") {
    if (frame.data.userId !== ctx.userId && frame.data.conversationId === ctx.current) ctx.typing(frame.data);
    return;
  }
  if (frame.type !== "read" && frame.type !== "messageDeleted" && frame.type !== "settingsChanged") return;
  const c = ctx.conversation(frame.data.conversationId);
  if (!c) return;
  const here = c.conversationId === ctx.current;
  if (frame.type === "read") {
    const p = c.participants.find((x) => x.userId === frame.data.userId);
    if (p) p.lastReadSeq = Math.max(p.lastReadSeq ?? 0, frame.data.seq);
    if (frame.data.userId === ctx.userId && !here) ctx.reload(c.conversationId); // another device read it
    if (here) ctx.messages.setParticipants(c.participants);
  } else if (frame.type === "messageDeleted") {
    if (here) ctx.messages.deleted(frame.data.messageId);
    else if (c.unreadCount) ctx.reload(c.conversationId);
  } else if (c.messageTtlSeconds !== frame.data.messageTtlSeconds) {
    c.messageTtlSeconds = frame.data.messageTtlSeconds;
    if (!here) return;
    const by =
      frame.data.by === ctx.userId
        ? "You"
        : (c.participants.find((p) => p.userId === frame.data.by)?.username ?? "Someone");
    ctx.ttlChanged(c, by);
  }
}

/**
 * What to say about a membership change: `gone` when the caller is out of `c` (removed or left
 * from another device), else a `status` line for others' changes (undefined for the caller's own).
 */
export function membershipNotice(
  type: "participantAdded" | "participantRemoved",
  data: MembershipChange,
  c: Conversation,
  userId: number | undefined,
  name: string,
): { gone?: string; status?: string } {
  const username = (id: number, fallback: string) => c.participants.find((p) => p.userId === id)?.username ?? fallback;
  if (type === "participantRemoved" && data.userId === userId) {
    return {
      gone: data.by === userId ? `You left “${name}”.` : `${username(data.by, "An admin")} removed you from “${name}”.`,
    };
  }
  if (data.by === userId) return {};
  const by = username(data.by, "Someone");
  const what =
    type === "participantAdded"
      ? `${by} added ${data.username}`
      : data.by === data.userId
        ? `${data.username} left`
        : `${by} removed ${data.username}`;
  return { status: `${what}. Messages from now on use a new key.` };
}
