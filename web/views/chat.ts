/**
 * The chat: the conversation list and message requests (kept live by the inbox socket, see app.ts)
 * and the open conversation (history, then a subscription: catch-up, dedupe, gap filling,
 * reconnects). A request (`status: "invited"`) shows Accept / Decline / Decline and block instead
 * of the composer. Title, members and the People dialog (people.ts) follow membership events.
 */
import {
  type CloseInfo,
  type Conversation,
  type MembershipChange,
  type ParleyClient,
  ParleyError,
  type ReceivedMessage,
  type SendResult,
  type ServerFrame,
  type Subscription,
} from "../../client/index.ts";
import { $, busy, h, setStatus, unreadable } from "../dom.ts";
import { Files } from "../files.ts";
import { PeopleDialog } from "./people.ts";

const ui = {
  newConversation: $<HTMLFormElement>("new-conversation"),
  newParticipants: $<HTMLInputElement>("new-participants"),
  newTitle: $<HTMLInputElement>("new-title"),
  list: $<HTMLUListElement>("conversation-list"),
  requestsSection: $("requests-section"),
  requests: $<HTMLUListElement>("request-list"),
  noConversations: $("no-conversations"),
  empty: $("no-conversation"),
  conversation: $("conversation"),
  title: $("conversation-title"),
  members: $("conversation-members"),
  people: $<HTMLButtonElement>("details-button"),
  request: $("request-banner"),
  requestText: $("request-text"),
  accept: $<HTMLButtonElement>("accept-request"),
  decline: $<HTMLButtonElement>("decline-request"),
  declineBlock: $<HTMLButtonElement>("decline-block-request"),
  leftNotice: $("left-notice"),
  liveState: $("live-state"),
  older: $<HTMLButtonElement>("older"),
  messages: $<HTMLOListElement>("messages"),
  composer: $<HTMLFormElement>("composer"),
  input: $<HTMLInputElement>("message-input"),
};

const PAGE = 50;
const LIVE_LABEL: Record<string, string> = {
  open: "live",
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  closed: "offline",
};

export class ChatView {
  private conversations = new Map<number, Conversation>();
  private unread = new Set<number>();
  private current: number | undefined;
  private subscription: (Subscription & { readonly lastMessageId: number }) | undefined;
  private rendered = new Map<number, HTMLLIElement>();
  private oldestLoaded: number | undefined;
  private readonly people: PeopleDialog;
  private readonly files: Files;

  /** `onError` reports a failed action (an identity change also raises its warning there). */
  private readonly client: ParleyClient;
  private readonly onError: (err: unknown) => void;

  constructor(client: ParleyClient, onError: (err: unknown) => void) {
    this.client = client;
    this.onError = onError;
    ui.newConversation.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.run(ui.newConversation, () => this.create(ui.newParticipants.value, ui.newTitle.value.trim()));
    });
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.run(ui.composer, () => this.send()).then(() => ui.input.focus());
    });
    this.files = new Files(client, {
      current: () => this.current,
      sent: (id, sent, text, attachments) => this.showOwn(id, sent, text, attachments),
      onError,
    });
    ui.older.addEventListener("click", () => void this.run(undefined, () => this.loadOlder()));
    this.people = new PeopleDialog(client, {
      changed: (c) => this.update(c),
      left: (c) => this.gone(c.conversationId, `You left “${this.name(c)}”.`),
    });
    ui.people.addEventListener("click", () => {
      const c = this.current === undefined ? undefined : this.conversations.get(this.current);
      if (c) this.people.open(c);
    });
    ui.accept.addEventListener("click", () => void this.run(ui.request, () => this.accept()));
    ui.decline.addEventListener("click", () => void this.run(ui.request, () => this.decline(false)));
    ui.declineBlock.addEventListener("click", () => void this.run(ui.request, () => this.decline(true)));
  }

  private async run(form: HTMLElement | undefined, fn: () => Promise<void>): Promise<void> {
    try {
      await busy(form, fn);
    } catch (err) {
      this.onError(err);
    }
  }

  // ---- the list -------------------------------------------------------------------------------

  private name(c: Conversation): string {
    if (c.title) return c.title;
    const me = this.client.username?.toLowerCase();
    const others = c.participants.filter((p) => p.username.toLowerCase() !== me).map((p) => p.username);
    return others.join(", ") || "Just you";
  }

  private renderList(): void {
    const items = [...this.conversations.values()].sort(
      (a, b) => (b.lastMessageId ?? 0) - (a.lastMessageId ?? 0) || b.conversationId - a.conversationId,
    );
    const requests = items.filter((c) => c.status === "invited");
    const accepted = items.filter((c) => c.status !== "invited");
    ui.noConversations.hidden = accepted.length > 0;
    ui.requestsSection.hidden = requests.length === 0;
    ui.requests.replaceChildren(...requests.map((c) => this.listItem(c)));
    ui.list.replaceChildren(...accepted.map((c) => this.listItem(c)));
  }

  private listItem(c: Conversation): HTMLLIElement {
    const unread = this.unread.has(c.conversationId);
    const request = c.status === "invited";
    const classes = ["conversation-item", ...(unread ? ["unread"] : []), ...(request ? ["request"] : [])];
    const button = h("button", { type: "button", class: classes.join(" ") }, this.name(c));
    button.dataset.conversationId = String(c.conversationId);
    if (c.conversationId === this.current) button.setAttribute("aria-current", "true");
    const extra = [...(request ? ["message request"] : []), ...(unread ? ["new messages"] : [])];
    if (extra.length) button.setAttribute("aria-label", `${this.name(c)} (${extra.join(", ")})`);
    button.addEventListener("click", () => void this.run(undefined, () => this.open(c.conversationId)));
    return h("li", {}, button);
  }

  async refresh(): Promise<void> {
    const list = await this.client.allConversations();
    this.conversations = new Map(list.map((c) => [c.conversationId, c]));
    this.renderList();
  }

  private async create(participants: string, title: string): Promise<void> {
    const usernames = participants.split(/[\s,]+/).filter(Boolean);
    if (usernames.length === 0) return;
    setStatus("Starting the conversation…");
    const conversation = await this.client.createConversation(usernames, title ? { title } : {});
    this.conversations.set(conversation.conversationId, conversation);
    ui.newParticipants.value = "";
    ui.newTitle.value = "";
    this.renderList();
    await this.open(conversation.conversationId);
    setStatus(`Conversation with ${usernames.join(", ")} started.`);
  }

  /** Inbox frames that concern the list. */
  onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "conversationCreated":
        this.conversations.set(frame.data.conversationId, frame.data);
        if (frame.data.conversationId !== this.current) this.unread.add(frame.data.conversationId);
        this.renderList();
        break;
      case "newMessage": {
        const c = this.conversations.get(frame.data.conversationId);
        if (c) c.lastMessageId = frame.data.messageId;
        if (frame.data.conversationId !== this.current) this.unread.add(frame.data.conversationId);
        this.renderList();
        break;
      }
      case "participantAdded":
      case "participantRemoved":
        this.membership(frame.type, frame.data);
        break;
      case "epochChanged":
        if (frame.data.conversationId === this.current) void this.reload(frame.data.conversationId);
        break;
      default:
        break;
    }
  }

  private membership(type: "participantAdded" | "participantRemoved", data: MembershipChange): void {
    const c = this.conversations.get(data.conversationId);
    if (type === "participantRemoved" && data.userId === this.client.userId) {
      if (!c) return; // this device left or declined it: already shown
      const by = c.participants.find((p) => p.userId === data.by)?.username ?? "An admin";
      const text =
        data.by === this.client.userId ? `You left “${this.name(c)}”.` : `${by} removed you from “${this.name(c)}”.`;
      this.gone(data.conversationId, text);
      return;
    }
    if (!c) return void this.refresh().catch((err) => console.warn(err));
    if (data.conversationId === this.current && data.by !== this.client.userId) {
      const by = c.participants.find((p) => p.userId === data.by)?.username ?? "Someone";
      const what =
        type === "participantAdded"
          ? `${by} added ${data.username}`
          : data.by === data.userId
            ? `${data.username} left`
            : `${by} removed ${data.username}`;
      setStatus(`${what}. Messages from now on use a new key.`);
    }
    void this.reload(data.conversationId);
  }

  /** Re-reads one conversation (membership or epoch changed) and shows it wherever it appears. */
  private async reload(conversationId: number): Promise<void> {
    try {
      this.update(await this.client.getConversation(conversationId));
    } catch (err) {
      if (err instanceof ParleyError && err.status === 403) return; // no longer in it: the event says so
      console.warn(err);
    }
  }

  /** A newer view of a conversation: the list, and the header, banner and People dialog if open. */
  private update(c: Conversation): void {
    this.conversations.set(c.conversationId, c);
    this.renderList();
    if (c.conversationId !== this.current) return;
    ui.title.textContent = this.name(c);
    const names = c.participants.map((p) => (p.status === "invited" ? `${p.username} (not accepted yet)` : p.username));
    ui.members.textContent = `With ${names.join(", ")} · end-to-end encrypted`;
    const invited = c.status === "invited";
    ui.request.hidden = !invited;
    ui.composer.hidden = invited;
    ui.leftNotice.hidden = true;
    ui.people.hidden = false;
    if (invited) {
      const inviter = c.participants.find((p) => p.role === "admin" && p.userId !== this.client.userId);
      ui.requestText.textContent = `${inviter?.username ?? "Someone"} wants to chat with you. You can read this conversation; accept it to reply.`;
    }
    if (this.people.isOpen) this.people.render(c);
  }

  /** The caller is out of a conversation (removed, left, declined): say so where it was shown. */
  private gone(conversationId: number, text: string): void {
    this.conversations.delete(conversationId);
    this.unread.delete(conversationId);
    this.renderList();
    setStatus(text);
    if (this.current !== conversationId) return;
    this.people.close();
    this.subscription?.close();
    this.subscription = undefined;
    ui.request.hidden = true;
    ui.composer.hidden = true;
    ui.people.hidden = true;
    ui.liveState.textContent = "";
    ui.leftNotice.textContent = `${text} You can no longer read new messages or reply here.`;
    ui.leftNotice.hidden = false;
  }

  private async accept(): Promise<void> {
    const id = this.current;
    if (id === undefined) return;
    const c = await this.client.acceptConversation(id);
    this.update(c);
    setStatus(`You accepted “${this.name(c)}”. You can reply now.`);
    ui.input.focus();
  }

  private async decline(block: boolean): Promise<void> {
    const id = this.current;
    const c = id === undefined ? undefined : this.conversations.get(id);
    if (id === undefined || !c) return;
    const inviter = c.participants.find((p) => p.role === "admin" && p.userId !== this.client.userId)?.username;
    await this.client.declineConversation(id, { block });
    this.closeConversation();
    this.conversations.delete(id);
    this.renderList();
    setStatus(
      block && inviter
        ? `You declined “${this.name(c)}” and blocked ${inviter}. They can no longer add you to conversations.`
        : `You declined “${this.name(c)}”.`,
    );
  }

  // ---- the open conversation ------------------------------------------------------------------

  closeConversation(): void {
    this.subscription?.close();
    this.subscription = undefined;
    this.current = undefined;
    ui.messages.replaceChildren();
    this.rendered.clear();
    this.oldestLoaded = undefined;
    this.files.clear();
    ui.conversation.hidden = true;
    ui.empty.hidden = false;
    ui.leftNotice.hidden = true;
    this.people.close();
  }

  /** Everything back to empty (logout, session ended). */
  reset(): void {
    this.closeConversation();
    this.conversations.clear();
    this.unread.clear();
    ui.list.replaceChildren();
    ui.noConversations.hidden = false;
  }

  /** Inserts a message in `seq` order, once per `messageId`. */
  private render(message: ReceivedMessage): void {
    if (message.conversationId !== this.current || this.rendered.has(message.messageId)) return;
    const mine = message.senderId === this.client.userId;
    const time = h("time", { datetime: message.timestamp }, new Date(message.timestamp).toLocaleTimeString());
    const meta = h(
      "div",
      { class: "meta" },
      h("span", { class: "sender" }, message.senderUsername ?? "deleted account"),
      " ",
      time,
    );
    const body = h("div", { class: "text" });
    const li = h("li", { class: mine ? "message mine" : "message" }, meta, body);
    li.dataset.messageId = String(message.messageId);
    li.dataset.seq = String(message.seq);
    if (message.ok) {
      this.files.fill(body, message); // text only, never parsed as HTML; then its files
    } else {
      li.classList.add("undecryptable");
      body.textContent = unreadable(message);
    }
    const next = [...this.rendered.values()].find((el) => Number(el.dataset.seq) > message.seq);
    const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
    ui.messages.insertBefore(li, next ?? null);
    this.rendered.set(message.messageId, li);
    this.oldestLoaded = Math.min(this.oldestLoaded ?? message.messageId, message.messageId);
    if (!next && atBottom) li.scrollIntoView({ block: "end" });
  }

  async open(conversationId: number): Promise<void> {
    if (this.current === conversationId) return;
    this.closeConversation();
    this.current = conversationId;
    this.unread.delete(conversationId);
    const conversation = await this.client.getConversation(conversationId);
    if (this.current !== conversationId) return;
    ui.empty.hidden = true;
    ui.conversation.hidden = false;
    this.update(conversation);
    const history = (await this.client.messages(conversationId, { limit: PAGE })).reverse();
    if (this.current !== conversationId) return;
    for (const m of history) this.render(m);
    ui.older.hidden = history.length < PAGE;
    ui.messages.lastElementChild?.scrollIntoView({ block: "end" });
    this.subscription = this.client.subscribe(conversationId, (m) => this.render(m), {
      after: history.at(-1)?.messageId ?? 0,
      onStateChange: (s) => {
        ui.liveState.textContent = LIVE_LABEL[s] ?? s;
        ui.liveState.dataset.state = s;
      },
      onClose: (info: CloseInfo) => {
        if (info.cause === "removed") {
          // Usually the inbox's participantRemoved came first and said who removed us.
          if (this.conversations.has(conversationId))
            this.gone(conversationId, "You were removed from this conversation.");
        } else if (info.cause !== "client" && info.cause !== "session-ended") {
          setStatus("This conversation stopped updating. Open it again to reconnect.", "error");
        }
      },
      onError: (err) => console.warn("subscription:", err),
    });
    ui.input.focus();
  }

  private async loadOlder(): Promise<void> {
    const id = this.current;
    if (id === undefined || this.oldestLoaded === undefined) return;
    const older = await this.client.messages(id, { limit: PAGE, before: this.oldestLoaded });
    for (const m of older) this.render(m);
    ui.older.hidden = older.length < PAGE;
  }

  private async send(): Promise<void> {
    const id = this.current;
    const text = ui.input.value;
    if (id === undefined || text.trim() === "") return;
    const sent = await this.client.sendMessage(id, text);
    ui.input.value = "";
    this.showOwn(id, sent, text, []);
  }

  /** A message this browser sent, shown at once; the live echo of the same messageId is then ignored. */
  private showOwn(id: number, sent: SendResult, text: string, attachments: number[]): void {
    this.render({
      messageId: sent.messageId,
      seq: sent.seq,
      conversationId: id,
      senderId: this.client.userId ?? 0,
      senderUsername: this.client.username ?? "",
      senderDeviceId: this.client.deviceId ?? 0,
      keyEpoch: sent.keyEpoch,
      timestamp: sent.timestamp,
      clientMessageId: sent.clientMessageId,
      attachments,
      relatesTo: null,
      expiresAt: null,
      deleted: false,
      ok: true,
      text,
    });
  }
}
