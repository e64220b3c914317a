/**
 * Issue #13 on the client: read state, typing, relations (reply / edit / reaction), delete for
 * everyone and disappearing messages. Edits and reactions are ordinary encrypted messages with a
 * `relatesTo`: the server sees which message they point at and their kind, never their content.
 */
import type { Conversation, RelatesTo, Typing } from "../contract/index.ts";
import type { ReceivedMessage } from "./client.ts";

/** How long a `typing` indication is shown unless it is repeated (the server relays at most one per 2 s). */
export const TYPING_DISPLAY_MS = 4_000;

/** Who is typing where, each entry expiring `displayMs` after its last `typing` frame. */
export class TypingTracker {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly onChange: (conversationId: number, userIds: number[]) => void;
  private readonly displayMs: number;

  /** `onChange` runs whenever the set of typists of a conversation changes. */
  constructor(onChange: (conversationId: number, userIds: number[]) => void, displayMs = TYPING_DISPLAY_MS) {
    if (displayMs < 3_000 || displayMs > 5_000) throw new RangeError("show typing for 3 to 5 seconds");
    this.onChange = onChange;
    this.displayMs = displayMs;
  }

  /** Feed every `typing` frame here. */
  typing({ conversationId, userId }: Typing): void {
    const key = `${conversationId}:${userId}`;
    const known = this.timers.has(key);
    const timer = this.timers.get(key);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.set(
      key,
      setTimeout(() => this.stop(conversationId, userId), this.displayMs),
    );
    if (!known) this.onChange(conversationId, this.typists(conversationId));
  }

  /** A message from `userId` ends their typing at once. */
  stop(conversationId: number, userId: number): void {
    const key = `${conversationId}:${userId}`;
    if (!this.timers.has(key)) return;
    const timer = this.timers.get(key);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(key);
    this.onChange(conversationId, this.typists(conversationId));
  }

  typists(conversationId: number): number[] {
    const prefix = `${conversationId}:`;
    return [...this.timers.keys()].filter((k) => k.startsWith(prefix)).map((k) => Number(k.slice(prefix.length)));
  }

  dispose(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

/** A message with what relates to it folded in: the latest edit's text and the reactions. */
export type ThreadedMessage = ReceivedMessage & {
  /** The text as last edited by its sender (`text` when never edited; `null` for a tombstone). */
  displayText: string | null;
  edited: boolean;
  /** Reaction text (e.g. an emoji) → the user ids who reacted with it (tombstoned reactions excluded). */
  reactions: Map<string, number[]>;
  /** What this message replies to, if it is a reply. */
  replyTo: number | null;
};

/**
 * Folds decrypted edits and reactions into the messages they relate to: returns the messages that
 * are neither (replies included, with `replyTo`), in the given order. Only the sender's own edits
 * count (the server refuses others', but a client checks what it can); a later edit wins by `seq`.
 */
export function applyRelations(messages: ReceivedMessage[]): ThreadedMessage[] {
  const byId = new Map<number, ThreadedMessage>();
  const out: ThreadedMessage[] = [];
  for (const m of messages) {
    if (m.relatesTo?.kind === "edit" || m.relatesTo?.kind === "reaction") continue;
    const threaded: ThreadedMessage = {
      ...m,
      displayText: m.ok ? m.text : null,
      edited: false,
      reactions: new Map(),
      replyTo: m.relatesTo?.kind === "reply" ? m.relatesTo.messageId : null,
    };
    byId.set(m.messageId, threaded);
    out.push(threaded);
  }
  const related = messages.filter((m) => m.relatesTo?.kind === "edit" || m.relatesTo?.kind === "reaction");
  related.sort((a, b) => a.seq - b.seq);
  for (const m of related) {
    const target = byId.get((m.relatesTo as RelatesTo).messageId);
    if (!target || !m.ok || target.deleted) continue;
    if (m.relatesTo?.kind === "edit") {
      if (m.senderId !== target.senderId) continue;
      target.displayText = m.text;
      target.edited = true;
    } else {
      const users = target.reactions.get(m.text) ?? [];
      if (!users.includes(m.senderId)) users.push(m.senderId);
      target.reactions.set(m.text, users);
    }
  }
  return out;
}

/** The total of `unreadCount` over some conversations (e.g. a page of `listConversations`): a badge. */
export const totalUnread = (conversations: Pick<Conversation, "unreadCount">[]): number =>
  conversations.reduce((sum, c) => sum + c.unreadCount, 0);
