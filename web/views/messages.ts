/**
 * The open conversation's messages: what the library delivered (history, live, this browser's own
 * sends), folded with `applyRelations` (edits replace the text, reactions gather under their
 * message), with read ticks on the caller's own messages, and each message's actions (Reply, a few
 * reactions, Edit and Delete on one's own). Disappearing messages leave the screen at `expiresAt`;
 * deleted ones stay as a one-line tombstone. Rendering is keyed: a message whose look did not
 * change keeps its element (and the keyboard focus in it).
 */
import { applyRelations, type Participant, type ReceivedMessage, type ThreadedMessage } from "../../client/index.ts";
import { $, h, unreadable } from "../dom.ts";

const messagesEl = () => $<HTMLOListElement>("messages");

/** The quick reactions offered on every message. */
export const REACTIONS: [emoji: string, name: string][] = [
  ["👍", "thumbs up"],
  ["❤️", "heart"],
  ["😂", "laughing"],
];

export type MessageAction = "reply" | "edit" | "delete" | "react";

export interface MessageListHost {
  readonly userId: number | undefined;
  /** A message action was chosen (`reaction` for "react"). */
  action(kind: MessageAction, message: ThreadedMessage, reaction?: string): void;
  /** Files in messages (files.ts): a file message's body, and any message's text in one line. */
  readonly files: {
    fill(body: HTMLElement, message: ThreadedMessage & { ok: true }): void;
    caption(message: ThreadedMessage): string | null;
  };
}

const clock = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
const clockSeconds = (ms: number) =>
  new Date(ms).toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit" });

export class MessageList {
  private raw = new Map<number, ReceivedMessage>();
  private shown = new Map<number, ThreadedMessage>();
  private elements = new Map<number, HTMLLIElement>();
  private participants: Participant[] = [];
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  private scheduled = false;
  private readonly host: MessageListHost;

  constructor(host: MessageListHost) {
    this.host = host;
  }

  /** A message from history, the socket or this browser's own send (a later copy replaces an earlier one). */
  add(message: ReceivedMessage): void {
    this.raw.set(message.messageId, message);
    this.schedule();
  }

  has(messageId: number): boolean {
    return this.raw.has(messageId);
  }

  get(messageId: number): ThreadedMessage | undefined {
    return this.shown.get(messageId);
  }

  /** Deleted for everyone (a `messageDeleted` frame or this browser's own delete). */
  deleted(messageId: number): void {
    const m = this.raw.get(messageId);
    if (!m) return;
    this.raw.set(messageId, { ...m, deleted: true, ok: false, text: null, error: new Error("deleted") });
    this.schedule();
  }

  /** Who is in the conversation, with their read watermarks (for the ticks). */
  setParticipants(participants: Participant[]): void {
    this.participants = participants;
    this.schedule();
  }

  get oldest(): number | undefined {
    const ids = [...this.raw.keys()];
    return ids.length ? Math.min(...ids) : undefined;
  }

  /** The highest `seq` loaded (what "read up to here" means). */
  get lastSeq(): number {
    let seq = 0;
    for (const m of this.raw.values()) seq = Math.max(seq, m.seq);
    return seq;
  }

  clear(): void {
    this.raw.clear();
    this.shown.clear();
    this.elements.clear();
    clearTimeout(this.expiryTimer);
    messagesEl().replaceChildren();
  }

  /** Coalesces the renders of one burst (a page of history arrives message by message). */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.render();
    });
  }

  render(): void {
    const list = messagesEl();
    const now = Date.now();
    const visible = [...this.raw.values()]
      .filter((m) => !(m.expiresAt && Date.parse(m.expiresAt) <= now))
      .sort((a, b) => a.seq - b.seq);
    const threaded = applyRelations(visible);
    this.shown = new Map(threaded.map((m) => [m.messageId, m]));
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const lastBefore = list.lastElementChild;
    const focused = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const focus = focused && list.contains(focused) ? focusKey(focused) : undefined;

    const next = new Map<number, HTMLLIElement>();
    threaded.forEach((m, i) => {
      const key = this.lookKey(m);
      let li = this.elements.get(m.messageId);
      if (!li || li.dataset.key !== key) li = this.element(m, key);
      next.set(m.messageId, li);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    });
    for (const [id, li] of this.elements) if (next.get(id) !== li) li.remove();
    while (list.children.length > threaded.length) list.lastElementChild?.remove();
    this.elements = next;

    if (focus && !list.contains(focused)) {
      list.querySelector<HTMLElement>(`[data-message-id="${focus.id}"] [data-action="${focus.action}"]`)?.focus();
    }
    if (list.lastElementChild !== lastBefore && atBottom) list.lastElementChild?.scrollIntoView({ block: "end" });
    this.armExpiry(visible, now);
  }

  /** One timer for the next message to disappear. */
  private armExpiry(visible: ReceivedMessage[], now: number): void {
    clearTimeout(this.expiryTimer);
    const next = Math.min(...visible.map((m) => (m.expiresAt ? Date.parse(m.expiresAt) : Number.POSITIVE_INFINITY)));
    if (Number.isFinite(next)) this.expiryTimer = setTimeout(() => this.render(), Math.max(0, next - now) + 50);
  }

  private name(userId: number): string {
    if (userId === this.host.userId) return "you";
    return this.participants.find((p) => p.userId === userId)?.username ?? "someone";
  }

  /** "Sent", "Read", or "Read by bob, carol" (group); only readers who share receipts count. */
  private receipt(m: ThreadedMessage): string {
    const others = this.participants.filter((p) => p.userId !== this.host.userId);
    const readers = others.filter((p) => p.lastReadSeq !== null && p.lastReadSeq >= m.seq);
    if (readers.length === 0) return "Sent";
    if (others.length === 1) return "Read";
    return `Read by ${readers.map((p) => p.username).join(", ")}`;
  }

  private lookKey(m: ThreadedMessage): string {
    const mine = m.senderId === this.host.userId;
    const reply = m.replyTo === null ? null : this.shown.get(m.replyTo);
    return JSON.stringify([
      m.ok,
      m.displayText,
      m.edited,
      m.deleted,
      m.expiresAt,
      [...m.reactions].map(([r, users]) => [r, users.map((u) => this.name(u))]),
      m.replyTo,
      reply?.displayText ?? null,
      mine && !m.deleted ? this.receipt(m) : null,
    ]);
  }

  private element(m: ThreadedMessage, key: string): HTMLLIElement {
    const mine = m.senderId === this.host.userId;
    const sender = m.senderUsername ?? "deleted account";
    const meta = h(
      "div",
      { class: "meta" },
      h("span", { class: "sender" }, sender),
      " ",
      h("time", { datetime: m.timestamp }, clock(m.timestamp)),
    );
    if (m.edited && !m.deleted) meta.append(" ", h("span", { class: "edited" }, "(edited)"));
    if (m.expiresAt && !m.deleted) {
      const at = clockSeconds(Date.parse(m.expiresAt));
      meta.append(" ", h("span", { class: "expires", title: `Disappears at ${at}` }, `disappears at ${at}`));
    }
    const li = h("li", { class: mine ? "message mine" : "message" }, meta);
    li.dataset.messageId = String(m.messageId);
    li.dataset.seq = String(m.seq);
    li.dataset.key = key;
    if (m.replyTo !== null) li.append(this.quote(m.replyTo));
    const body = h("div", { class: "text" });
    li.append(body);
    if (m.ok && !m.deleted) {
      if (m.attachments?.length) this.host.files.fill(body, m);
      else body.textContent = m.displayText; // text only: never parsed as HTML
    } else {
      li.classList.add(m.deleted ? "deleted" : "undecryptable");
      body.textContent = unreadable(m);
    }
    if (m.reactions.size) li.append(this.reactions(m));
    if (mine && !m.deleted) {
      const receipt = this.receipt(m);
      li.append(
        h(
          "div",
          { class: "receipt", "data-read": String(receipt !== "Sent") },
          receipt === "Sent" ? "✓ Sent" : `✓✓ ${receipt}`,
        ),
      );
    }
    if (!m.deleted && m.ok) li.append(this.actions(m, mine, sender));
    return li;
  }

  private quote(replyTo: number): HTMLElement {
    const target = this.shown.get(replyTo);
    const text = !target
      ? "an earlier message"
      : target.deleted || !target.ok
        ? "a message that is no longer available"
        : `${target.senderUsername ?? "deleted account"}: ${this.host.files.caption(target) ?? ""}`;
    return h(
      "blockquote",
      { class: "reply-quote" },
      h("span", { class: "visually-hidden" }, "In reply to "),
      `↩ ${text}`,
    );
  }

  private reactions(m: ThreadedMessage): HTMLElement {
    const chips = [...m.reactions].map(([reaction, users]) => {
      const names = users.map((u) => this.name(u)).join(", ");
      const mineToo = this.host.userId !== undefined && users.includes(this.host.userId);
      const chip = h(
        "button",
        {
          type: "button",
          class: mineToo ? "reaction mine" : "reaction",
          "aria-label": `${reaction} from ${names}${mineToo ? "" : `. Add ${reaction}`}`,
          title: names,
          "data-action": `chip-${reaction}`,
        },
        `${reaction} ${users.length}`,
      );
      chip.dataset.reaction = reaction;
      if (mineToo) chip.setAttribute("aria-disabled", "true");
      else chip.addEventListener("click", () => this.host.action("react", m, reaction));
      return h("li", {}, chip);
    });
    return h("ul", { class: "reactions", "aria-label": "Reactions" }, ...chips);
  }

  private actions(m: ThreadedMessage, mine: boolean, sender: string): HTMLElement {
    const whose = mine ? "your message" : `${sender}'s message`;
    const button = (action: MessageAction, label: string, text: string, reaction?: string) => {
      const b = h("button", { type: "button", class: "action", "aria-label": label, title: label }, text);
      b.dataset.action = reaction ? `react-${reaction}` : action;
      b.addEventListener("click", () => this.host.action(action, m, reaction));
      return b;
    };
    const group = h(
      "div",
      { class: "actions", role: "group", "aria-label": `Actions on ${whose}` },
      button("reply", `Reply to ${whose}`, "Reply"),
      ...REACTIONS.map(([emoji, name]) => button("react", `React with ${name}`, emoji, emoji)),
    );
    if (mine) {
      if (!m.attachments?.length) group.append(button("edit", "Edit your message", "Edit"));
      group.append(button("delete", "Delete your message for everyone", "Delete"));
    }
    return group;
  }
}

/** "bob is typing…", "bob, carol are typing…", or nothing. */
export function typingLabel(names: string[]): string {
  if (names.length === 0) return "";
  return names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

function focusKey(el: HTMLElement): { id: string; action: string } | undefined {
  const action = el.dataset.action;
  const id = el.closest<HTMLElement>("[data-message-id]")?.dataset.messageId;
  return action && id ? { id, action } : undefined;
}
