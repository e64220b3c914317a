/**
 * The composer: a new message, a reply (a "Replying to …" bar above the field) or an edit of one's
 * own message (the field holds its text). Escape or Cancel goes back to a plain message. Typing
 * sends a throttled `typing` frame on the conversation socket (the library sends at most one per
 * interval).
 */
import type { ParleyClient, ReceivedMessage, RelatesTo, SendResult, ThreadedMessage } from "../../client/index.ts";
import { $, setStatus } from "../dom.ts";
import type { MessageAction } from "./messages.ts";

const ui = {
  form: $<HTMLFormElement>("composer"),
  input: $<HTMLInputElement>("message-input"),
  send: $<HTMLButtonElement>("send-button"),
  context: $("composer-context"),
  contextText: $("composer-context-text"),
  cancel: $<HTMLButtonElement>("composer-cancel"),
};

export interface ComposerHost {
  readonly conversationId: number | undefined;
  readonly messageTtlSeconds: number | null;
  /** This browser's own message, shown at once (the socket's copy replaces it). */
  sent(message: ReceivedMessage): void;
  /** One of this browser's messages was deleted for everyone. */
  deleted(messageId: number): void;
  typing(): void;
  /** Runs a send (the form busy meanwhile, a failure reported). */
  run(fn: () => Promise<void>): Promise<void>;
}

const snippet = (text: string | null) => {
  const t = text ?? "";
  return t.length > 60 ? `${t.slice(0, 60)}…` : t;
};

export class Composer {
  private mode: { kind: "reply" | "edit"; message: ThreadedMessage } | undefined;
  private readonly client: ParleyClient;
  private readonly host: ComposerHost;

  constructor(client: ParleyClient, host: ComposerHost) {
    this.client = client;
    this.host = host;
    ui.cancel.addEventListener("click", () => this.cancel());
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void host.run(() => this.send()).then(() => ui.input.focus());
    });
    ui.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.mode) {
        event.preventDefault();
        this.cancel();
      }
    });
    ui.input.addEventListener("input", () => {
      if (ui.input.value.trim()) host.typing();
    });
  }

  /** Reply to, or edit, `message`: the bar says which, and the field gets the focus. */
  start(kind: "reply" | "edit", message: ThreadedMessage): void {
    this.mode = { kind, message };
    const who = message.senderUsername ?? "deleted account";
    ui.contextText.textContent =
      kind === "reply" ? `Replying to ${who}: “${snippet(message.displayText)}”` : "Editing your message";
    ui.context.hidden = false;
    ui.send.textContent = kind === "edit" ? "Save" : "Send";
    if (kind === "edit") ui.input.value = message.displayText ?? "";
    ui.input.focus();
  }

  cancel(): void {
    if (this.mode?.kind === "edit") ui.input.value = "";
    this.mode = undefined;
    ui.context.hidden = true;
    ui.send.textContent = "Send";
    ui.input.focus();
  }

  /** Sends what the field holds (as a reply or an edit when one was chosen). */
  async send(): Promise<void> {
    const id = this.host.conversationId;
    const text = ui.input.value;
    if (id === undefined || text.trim() === "") return;
    const mode = this.mode;
    let sent: SendResult;
    if (mode?.kind === "edit") sent = await this.client.edit(id, mode.message.messageId, text);
    else if (mode?.kind === "reply") sent = await this.client.reply(id, mode.message.messageId, text);
    else sent = await this.client.sendMessage(id, text);
    ui.input.value = "";
    if (mode) this.cancel();
    this.echo(id, sent, text, mode ? { messageId: mode.message.messageId, kind: mode.kind } : null);
  }

  /** Shows what this browser just sent at once (the socket's copy of the same messageId replaces it). */
  echo(id: number, sent: SendResult, text: string, relatesTo: RelatesTo | null, attachments: number[] = []): void {
    const ttl = this.host.messageTtlSeconds;
    this.host.sent({
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
      relatesTo,
      expiresAt: ttl ? new Date(Date.parse(sent.timestamp) + ttl * 1000).toISOString() : null,
      deleted: false,
      ok: true,
      text,
    });
  }

  /** A message action: Reply and Edit go through the composer; a reaction or Delete happens at once. */
  async act(kind: MessageAction, m: ThreadedMessage, reaction?: string): Promise<void> {
    const id = this.host.conversationId;
    if (id === undefined) return;
    if (kind === "reply" || kind === "edit") return this.start(kind, m);
    if (kind === "react" && reaction) {
      const sent = await this.client.react(id, m.messageId, reaction);
      this.echo(id, sent, reaction, { messageId: m.messageId, kind: "reaction" });
      return;
    }
    if (kind === "delete") {
      if (!confirm("Delete this message for everyone? They will see that a message was deleted.")) return;
      await this.client.deleteMessage(m.messageId);
      this.host.deleted(m.messageId);
      setStatus("Message deleted for everyone.");
    }
  }

  /** Back to a plain, empty composer (another conversation was opened). */
  reset(): void {
    this.mode = undefined;
    ui.context.hidden = true;
    ui.send.textContent = "Send";
    ui.input.value = "";
  }
}
