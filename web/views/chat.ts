/**
 * The chat: the conversation list (list.ts) and message requests, kept live by the inbox socket
 * (app.ts), and the open conversation: history, then a subscription (catch-up, dedupe, gap filling,
 * reconnects) feeding the message list (messages.ts), typing, reads, deletes and settings
 * (events.ts), files (../files.ts: Attach, progress, inline images, downloads). A request (`status: "invited"`) shows Accept / Decline / Decline and block instead
 * of the composer (composer.ts). Title, members and People (people.ts) follow membership events.
 */
import {
  type CloseInfo,
  type Conversation,
  type MembershipChange,
  type ParleyClient,
  ParleyError,
  type ReceivedMessage,
  type ServerFrame,
  type Subscription,
  TypingTracker,
} from "../../client/index.ts";
import { $, busy, setStatus } from "../dom.ts";
import { Files } from "../files.ts";
import { Composer } from "./composer.ts";
import { conversationEvent, membershipNotice } from "./events.ts";
import { conversationName, renderConversationList } from "./list.ts";
import { MessageList, typingLabel } from "./messages.ts";
import { PeopleDialog } from "./people.ts";
import { TtlSelect } from "./ttl.ts";

const ui = {
  newConversation: $<HTMLFormElement>("new-conversation"),
  newParticipants: $<HTMLInputElement>("new-participants"),
  newTitle: $<HTMLInputElement>("new-title"),
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
  composer: $<HTMLFormElement>("composer"),
  input: $<HTMLInputElement>("message-input"),
  typing: $("typing"),
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
  private current: number | undefined;
  private subscription: (Subscription & { readonly lastMessageId: number }) | undefined;
  private readonly people: PeopleDialog;
  private readonly messages: MessageList;
  private readonly composer: Composer;
  private readonly files: Files;
  private readonly typists: TypingTracker;
  private readonly ttl: TtlSelect;
  /** The `seq` this browser last marked read in the open conversation. */
  private readSeq = 0;

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
    this.files = new Files(client, {
      current: () => this.current,
      sent: (id, sent, text, ids) => this.composer.echo(id, sent, text, null, ids),
      onError,
    });
    this.messages = new MessageList({
      get userId() {
        return client.userId;
      },
      files: this.files,
      action: (kind, m, reaction) =>
        void this.run(undefined, () => this.composer.act(kind, { ...m, displayText: this.files.caption(m) }, reaction)),
    });
    const chat = this;
    this.composer = new Composer(client, {
      get conversationId() {
        return chat.current;
      },
      get messageTtlSeconds() {
        return chat.open_()?.messageTtlSeconds ?? null;
      },
      sent: (m) => this.messages.add(m),
      deleted: (id) => this.messages.deleted(id),
      typing: () => this.subscription?.sendTyping(),
      run: (fn) => this.run(ui.composer, fn),
    });
    this.typists = new TypingTracker((id, users) => this.showTyping(id, users));
    document.addEventListener("visibilitychange", () => void this.markRead());
    this.ttl = new TtlSelect(
      (ttl) => this.setTtl(ttl),
      (fn) => void this.run(undefined, fn),
    );
    ui.older.addEventListener("click", () => void this.run(undefined, () => this.loadOlder()));
    this.people = new PeopleDialog(client, {
      changed: (c) => this.update(c),
      left: (c) => this.gone(c.conversationId, `You left “${this.name(c)}”.`),
    });
    ui.people.addEventListener("click", () => {
      const c = this.open_();
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
    return conversationName(c, this.client.username);
  }

  private renderList(): void {
    renderConversationList([...this.conversations.values()], {
      current: this.current,
      me: this.client.username,
      open: (id) => void this.run(undefined, () => this.open(id)),
    });
  }

  private open_(): Conversation | undefined {
    return this.current === undefined ? undefined : this.conversations.get(this.current);
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
        this.renderList();
        break;
      case "newMessage": {
        const c = this.conversations.get(frame.data.conversationId);
        if (!c) break;
        c.lastMessageId = frame.data.messageId;
        c.lastSeq = Math.max(c.lastSeq, frame.data.seq);
        const fromOther = frame.data.senderId !== this.client.userId;
        if (fromOther && frame.data.conversationId !== this.current && frame.data.seq > c.lastReadSeq) c.unreadCount++;
        this.renderList();
        break;
      }
      case "read":
      case "messageDeleted":
      case "settingsChanged":
        this.event(frame);
        break;
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
    const notice = c && membershipNotice(type, data, c, this.client.userId, this.name(c));
    if (type === "participantRemoved" && data.userId === this.client.userId) {
      if (notice?.gone) this.gone(data.conversationId, notice.gone); // else this device left or declined: shown
      return;
    }
    if (!c) return void this.refresh().catch((err) => console.warn(err));
    if (notice?.status && data.conversationId === this.current) setStatus(notice.status);
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
    this.ttl.show(c);
    this.messages.setParticipants(c.participants);
    if (invited) {
      const inviter = c.participants.find((p) => p.role === "admin" && p.userId !== this.client.userId);
      ui.requestText.textContent = `${inviter?.username ?? "Someone"} wants to chat with you. You can read this conversation; accept it to reply.`;
    }
    if (this.people.isOpen) this.people.render(c);
  }

  /** The caller is out of a conversation (removed, left, declined): say so where it was shown. */
  private gone(conversationId: number, text: string): void {
    this.conversations.delete(conversationId);
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
    this.readSeq = 0;
    this.messages.clear();
    this.composer.reset();
    this.typists.dispose();
    this.files.clear();
    ui.typing.textContent = "";
    ui.conversation.hidden = true;
    ui.empty.hidden = false;
    ui.leftNotice.hidden = true;
    this.people.close();
  }

  /** Everything back to empty (logout, session ended). */
  reset(): void {
    this.closeConversation();
    this.conversations.clear();
    this.renderList();
  }

  private receive(message: ReceivedMessage): void {
    if (message.conversationId !== this.current) return;
    this.messages.add(message);
    this.typists.stop(message.conversationId, message.senderId);
    if (message.senderId !== this.client.userId) void this.markRead();
  }

  /** Everything loaded is read once it is on a visible screen (the server drops the badge). */
  private async markRead(): Promise<void> {
    const c = this.open_();
    const seq = this.messages.lastSeq;
    if (!c || document.visibilityState !== "visible" || seq <= this.readSeq) return;
    this.readSeq = seq;
    const already = seq <= c.lastReadSeq;
    c.lastReadSeq = Math.max(c.lastReadSeq, seq);
    c.unreadCount = 0;
    this.renderList();
    if (already) return; // read before (this or another device): nothing to tell the server
    await this.client.markRead(c.conversationId, seq).catch((err) => console.warn("markRead:", err));
  }

  /** `read`, `messageDeleted`, `settingsChanged` and `typing`, from the inbox or the open conversation. */
  private event(frame: ServerFrame): void {
    conversationEvent(frame, {
      userId: this.client.userId,
      current: this.current,
      conversation: (id) => this.conversations.get(id),
      typing: (t) => this.typists.typing(t),
      reload: (id) => void this.reload(id),
      messages: this.messages,
      ttlChanged: (c, by) => this.ttl.changed(c, by),
    });
  }

  private showTyping(conversationId: number, userIds: number[]): void {
    const names = userIds.map((id) => this.open_()?.participants.find((p) => p.userId === id)?.username ?? "Someone");
    if (conversationId === this.current) ui.typing.textContent = typingLabel(names);
  }

  async open(conversationId: number): Promise<void> {
    if (this.current === conversationId) return;
    this.closeConversation();
    this.current = conversationId;
    const conversation = await this.client.getConversation(conversationId);
    if (this.current !== conversationId) return;
    ui.empty.hidden = true;
    ui.conversation.hidden = false;
    this.update(conversation);
    const history = (await this.client.messages(conversationId, { limit: PAGE })).reverse();
    if (this.current !== conversationId) return;
    for (const m of history) this.messages.add(m);
    this.messages.render();
    ui.older.hidden = history.length < PAGE;
    $("messages").lastElementChild?.scrollIntoView({ block: "end" });
    void this.markRead();
    this.subscription = this.client.subscribe(conversationId, (m) => this.receive(m), {
      after: history.at(-1)?.messageId ?? 0,
      onEvent: (frame) => this.event(frame),
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
    const oldest = this.messages.oldest;
    if (id === undefined || oldest === undefined) return;
    const older = await this.client.messages(id, { limit: PAGE, before: oldest });
    for (const m of older) this.messages.add(m);
    ui.older.hidden = older.length < PAGE;
  }

  private async setTtl(ttl: number | null): Promise<void> {
    if (this.current !== undefined) this.update(await this.client.setMessageTtl(this.current, ttl));
  }
}
