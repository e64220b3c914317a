/**
 * `ParleyClient`: the account side (account.ts) plus conversations, key epochs, messages and
 * sockets. Every key it uses is verified; every message it sends is signed; every message it
 * reads is verified before it is decrypted.
 */
import type {
  Conversation,
  MembershipChange,
  MessageAck,
  MessageResponse,
  RelatesTo,
  SendMessageRequest,
  ServerFrame,
  SocketTicket,
} from "../contract/index.ts";
import type { AccountClientOptions } from "./account.ts";
import {
  type AttachmentDescriptor,
  decodeContent,
  decryptFile,
  describeFile,
  downloadBlob,
  encodeContent,
  encryptFile,
  type FileInput,
  fileBytes,
  MAX_FILES_PER_MESSAGE,
  type MessageContent,
  type ProgressCallback,
  uploadBlob,
} from "./attachments.ts";
import { type Bytes, fromBase64, toBase64 } from "./bytes.ts";
import { ConversationsClient } from "./conversations.ts";
import { decryptMessage, encryptMessage } from "./crypto/message.ts";
import { type ConversationFeedOptions, subscribeConversationFeed } from "./feed.ts";
import { ParleyError } from "./http.ts";
import { type PushManagerLike, type PushSubscriptionLike, subscribePush, unsubscribePush } from "./push.ts";
import {
  defaultWebSocketFactory,
  LiveConnection,
  type LiveOptions,
  type Subscription,
  type WebSocketFactory,
} from "./socket.ts";
import { UnknownDeviceError } from "./trust.ts";

export interface ParleyClientOptions extends AccountClientOptions {
  /** Opens a WebSocket (default: the runtime's global `WebSocket`). */
  webSocket?: WebSocketFactory;
}

/** A message as the library delivers it: the server's metadata plus the verified, decrypted text. */
export type ReceivedMessage = Omit<
  MessageResponse,
  "nonce" | "ciphertext" | "authTag" | "associatedData" | "signature"
> &
  ({ ok: true; text: string } | { ok: false; text: null; error: Error });

export interface SendOptions {
  /** Defaults to a fresh `crypto.randomUUID()`; every resend (retry, rotation) reuses it. */
  clientMessageId?: string;
  signal?: AbortSignal;
  /** A reply, an edit or a reaction (see `reply`, `edit`, `react`). */
  relatesTo?: RelatesTo;
  /** Uploaded attachment ids the message carries (see `sendFiles`, which also describes them). */
  attachments?: number[];
}

export interface SendResult extends MessageAck {
  clientMessageId: string;
  /** The epoch the message was sent under. */
  keyEpoch: number;
}

export interface SubscribeOptions extends ConversationFeedOptions {
  onMembership?: (event: { type: "participantAdded" | "participantRemoved"; data: MembershipChange }) => void;
  /** Every other frame of the conversation: `typing`, `read`, `messageDeleted`, `settingsChanged`, `epochChanged`. */
  onEvent?: (frame: ServerFrame) => void;
}

export interface InboxOptions extends LiveOptions {
  /** Runs once the inbox socket is admitted, after every reconnect too (reload what you show). */
  onConnected?: () => void | Promise<void>;
}

/** How many times a send is re-tried after 409s (rotation required, stale epoch). */
const MAX_EPOCH_RETRIES = 3;

export class ParleyClient extends ConversationsClient {
  private readonly createSocket: WebSocketFactory;

  constructor(options: ParleyClientOptions) {
    super(options);
    this.createSocket = options.webSocket ?? defaultWebSocketFactory;
  }

  // ---- messages -------------------------------------------------------------------------------

  /** The epoch to send under, rotating first when needed (or when only a foreign creation wrap is held). */
  private async sendingEpoch(conversationId: number): Promise<number> {
    const state = this.current.get(conversationId) ?? (await this.getConversation(conversationId));
    if (state.rotationNeeded) return this.keyring.rotate(conversationId, state.epoch);
    const record = await this.keyring.get(conversationId, state.epoch);
    if (!record.bound) return this.keyring.rotate(conversationId, state.epoch);
    return state.epoch;
  }

  /**
   * Encrypts, signs and sends a text message under the current epoch. On 409 (`rotation required`
   * or a stale `keyEpoch`) it refreshes, rotates if needed and sends again with the same
   * `clientMessageId`; network errors, 5xx and 429 are retried the same way by the transport.
   */
  async sendMessage(conversationId: number, text: string, options: SendOptions = {}): Promise<SendResult> {
    if (text === "") throw new TypeError("a message cannot be empty");
    const self = this.activeDevice();
    const clientMessageId = options.clientMessageId ?? crypto.randomUUID();
    for (let attempt = 0; ; attempt++) {
      const epoch = await this.sendingEpoch(conversationId);
      this.current.set(conversationId, { epoch, rotationNeeded: false });
      const { key } = await this.keyring.get(conversationId, epoch);
      const binding = { conversationId, senderId: self.userId, senderDeviceId: self.deviceId, epoch };
      const sealed = await encryptMessage(key, text, binding, self.keys.signing.privateKey);
      const body: SendMessageRequest = {
        conversationId,
        keyEpoch: epoch,
        nonce: toBase64(sealed.nonce),
        ciphertext: toBase64(sealed.ciphertext),
        authTag: toBase64(sealed.authTag),
        associatedData: toBase64(sealed.associatedData),
        signature: toBase64(sealed.signature),
        clientMessageId,
        ...(options.relatesTo ? { relatesTo: options.relatesTo } : {}),
        ...(options.attachments?.length ? { attachments: options.attachments } : {}),
      };
      try {
        const ack = await this.http.request<MessageAck>("POST", "/messages", {
          body,
          idempotent: true,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        return { ...ack, clientMessageId, keyEpoch: epoch };
      } catch (err) {
        if (!(err instanceof ParleyError && err.status === 409) || attempt >= MAX_EPOCH_RETRIES) throw err;
        const rotate = err.details?.some((d) => d.path === "epoch") ?? false;
        const fresh = await this.getConversation(conversationId);
        if (rotate) this.current.set(conversationId, { epoch: fresh.epoch, rotationNeeded: true });
      }
    }
  }

  // ---- issue #14: attachments and push ------------------------------------------------------

  /**
   * Sends files with an optional text: each file is encrypted under a fresh key, uploaded, and
   * described (id, name, type, size, key, nonce, digest) in the message's encrypted envelope.
   */
  async sendFiles(
    conversationId: number,
    text: string,
    files: FileInput[],
    options: SendOptions & { onProgress?: ProgressCallback } = {},
  ): Promise<SendResult & { content: MessageContent }> {
    if (files.length === 0 || files.length > MAX_FILES_PER_MESSAGE) throw new TypeError("send 1 to 10 files");
    const { onProgress, ...send } = options;
    const described: AttachmentDescriptor[] = [];
    for (const [file, input] of files.entries()) {
      const data = await fileBytes(input.data);
      onProgress?.({ phase: "encrypting", loaded: 0, total: data.byteLength, file });
      const sealed = await encryptFile(data);
      const uploaded = await uploadBlob(this.http, conversationId, sealed.blob, {
        onProgress: (loaded, total) => onProgress?.({ phase: "uploading", loaded, total, file }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      described.push(describeFile(input, sealed, uploaded));
    }
    const content = { text, files: described };
    const attachments = described.map((f) => f.attachmentId);
    const result = await this.sendMessage(conversationId, encodeContent(content), { ...send, attachments });
    onProgress?.({ phase: "done", loaded: 1, total: 1 });
    return { ...result, content };
  }

  /** The text and file descriptors of a decrypted message (plain text when it has no attachments). */
  content(message: ReceivedMessage & { ok: true }): MessageContent {
    return decodeContent(message.text, message.attachments);
  }

  /** Downloads one attachment, checks its length and digest, and decrypts it. */
  async downloadFile(
    file: AttachmentDescriptor,
    options: { onProgress?: ProgressCallback; signal?: AbortSignal } = {},
  ): Promise<Bytes> {
    const blob = await downloadBlob(this.http, file.attachmentId, {
      expected: file.size + 16,
      onProgress: (loaded, total) => options.onProgress?.({ phase: "downloading", loaded, total }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    options.onProgress?.({ phase: "verifying", loaded: blob.byteLength, total: blob.byteLength });
    const data = await decryptFile(blob, file);
    options.onProgress?.({ phase: "done", loaded: data.byteLength, total: data.byteLength });
    return data;
  }

  /** Subscribes this device to Web Push through `pushManager` (ask for permission first). */
  enablePush(pushManager: PushManagerLike): Promise<PushSubscriptionLike> {
    return subscribePush(this.http, this.activeDevice().deviceId, pushManager);
  }

  /** Stops pushes to this device (and unsubscribes `pushManager` when given). */
  disablePush(pushManager?: PushManagerLike): Promise<void> {
    return unsubscribePush(this.http, this.activeDevice().deviceId, pushManager);
  }

  // ---- issue #13: relations, deletion, read state, disappearing messages ---------------------

  /** A reply to `messageId`: an ordinary encrypted message that points at it. */
  reply(conversationId: number, messageId: number, text: string, options: SendOptions = {}): Promise<SendResult> {
    return this.sendMessage(conversationId, text, { ...options, relatesTo: { messageId, kind: "reply" } });
  }

  /** The new text of one of the caller's own messages (the server refuses others': 422). */
  edit(conversationId: number, messageId: number, text: string, options: SendOptions = {}): Promise<SendResult> {
    return this.sendMessage(conversationId, text, { ...options, relatesTo: { messageId, kind: "edit" } });
  }

  /** A reaction (e.g. an emoji), encrypted like a message; `applyRelations` folds it into its target. */
  react(conversationId: number, messageId: number, reaction: string, options: SendOptions = {}): Promise<SendResult> {
    return this.sendMessage(conversationId, reaction, { ...options, relatesTo: { messageId, kind: "reaction" } });
  }

  /** Deletes one of the caller's messages for everyone (a tombstone stays; deleting again is fine). */
  async deleteMessage(messageId: number): Promise<void> {
    await this.http.request<void>("DELETE", `/messages/${messageId}`);
  }

  /** Marks everything up to `seq` read (a lower value than the current watermark changes nothing). */
  async markRead(conversationId: number, seq: number): Promise<void> {
    await this.http.request<void>("POST", `/conversations/${conversationId}/read`, { body: { seq }, idempotent: true });
  }

  /** Disappearing messages: `null` (never) or 30 to 31,536,000 seconds, for messages sent from now on. */
  setMessageTtl(conversationId: number, messageTtlSeconds: number | null): Promise<Conversation> {
    return this.http.request<Conversation>("PUT", `/conversations/${conversationId}/settings`, {
      body: { messageTtlSeconds },
    });
  }

  /** Verifies and decrypts one message; failures are reported in the result, never thrown. */
  async decrypt(message: MessageResponse): Promise<ReceivedMessage> {
    const { nonce, ciphertext, authTag, associatedData, signature, ...meta } = message;
    try {
      if (message.deleted || nonce === null || ciphertext === null || authTag === null || signature === null) {
        throw new Error("the message was deleted");
      }
      const { key } = await this.keyring.get(message.conversationId, message.keyEpoch);
      const sender = await this.directory.findDevice(message.senderDeviceId, {
        conversationId: message.conversationId,
        username: message.senderUsername,
      });
      if (sender.userId !== message.senderId) {
        throw new UnknownDeviceError(`device ${sender.deviceId} is not a device of user ${message.senderId}`);
      }
      const text = await decryptMessage(
        key,
        {
          nonce: fromBase64(nonce),
          ciphertext: fromBase64(ciphertext),
          authTag: fromBase64(authTag),
          signature: fromBase64(signature),
          associatedData: associatedData === null ? null : fromBase64(associatedData),
        },
        {
          conversationId: message.conversationId,
          senderId: message.senderId,
          senderDeviceId: message.senderDeviceId,
          epoch: message.keyEpoch,
        },
        sender.signingKey,
      );
      return { ...meta, ok: true, text };
    } catch (err) {
      return { ...meta, ok: false, text: null, error: err instanceof Error ? err : new Error(String(err)) };
    }
  }

  /** Raw history (`before`: newest first; `after`: oldest first, as the API pages). */
  rawMessages(
    conversationId: number,
    query: { limit?: number; before?: number; after?: number } = {},
  ): Promise<MessageResponse[]> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    const suffix = qs.size ? `?${qs}` : "";
    return this.http.request<MessageResponse[]>("GET", `/conversations/${conversationId}/messages${suffix}`);
  }

  /** Verified, decrypted history, in the API's order for the query. */
  async messages(
    conversationId: number,
    query: { limit?: number; before?: number; after?: number } = {},
  ): Promise<ReceivedMessage[]> {
    const out: ReceivedMessage[] = [];
    for (const m of await this.rawMessages(conversationId, query)) out.push(await this.decrypt(m));
    return out;
  }

  // ---- live -----------------------------------------------------------------------------------

  /** A socket URL with a single-use ticket (`POST /ws/tickets`), never the access token. */
  private async socketUrl(params: Record<string, string>): Promise<string> {
    const { ticket } = await this.http.request<SocketTicket>("POST", "/ws/tickets");
    const url = new URL(`${this.http.baseUrl}/ws`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    url.searchParams.set("ticket", ticket);
    return url.toString();
  }

  /** What the library itself does with a frame before the app sees it. */
  private async observe(frame: ServerFrame): Promise<void> {
    switch (frame.type) {
      case "epochChanged":
      case "participantRemoved":
        this.current.delete(frame.data.conversationId);
        break;
      case "deviceAdded":
      case "deviceRemoved":
        // Some conversations may need rotating now: re-read each before its next send.
        this.current.clear();
        break;
      case "identityChanged":
        this.current.clear();
        await this.identityChanged(frame.data.userId, frame.data.username);
        break;
      case "deviceApproved":
        if (frame.data.deviceId === this.deviceId) this.wakeApprovalWaiters();
        break;
    }
  }

  private sessionEnded = (reason: string): void => {
    void this.session.end("session-ended", reason || "the session ended");
  };

  /**
   * A conversation's messages live, verified and decrypted, each once and in `seq` order (socket
   * first, then catch-up with `after`, gaps filled, reconnects with backoff and a fresh ticket).
   * Stops for good on 4003 (`removed`), 4001 (`session-ended`) or a 1008 refusal.
   */
  subscribe(
    conversationId: number,
    onMessage: (message: ReceivedMessage) => void | Promise<void>,
    options: SubscribeOptions = {},
  ): Subscription & { readonly lastMessageId: number } {
    return subscribeConversationFeed({
      conversationId,
      url: () => this.socketUrl({ conversationId: String(conversationId) }),
      getToken: (o) => this.session.getToken(o),
      createSocket: this.createSocket,
      fetchMessages: (query) => this.rawMessages(conversationId, query),
      onMessage: async (message) => onMessage(await this.decrypt(message)),
      onEvent: async (frame) => {
        await this.observe(frame);
        if (frame.type === "participantAdded" || frame.type === "participantRemoved") options.onMembership?.(frame);
        else options.onEvent?.(frame);
      },
      onSessionEnded: this.sessionEnded,
      options,
    });
  }

  /**
   * The inbox socket: every frame for this device, raw (`newMessage`, membership, epochs, devices,
   * identities). The library acts on `identityChanged` (the warning), `deviceApproved` (wakes
   * `waitForApproval`) and `epochChanged` itself, then passes each frame on. Pending devices may
   * open it too.
   */
  watchInbox(onFrame: (frame: ServerFrame) => void | Promise<void>, options: InboxOptions = {}): Subscription {
    return new LiveConnection({
      url: () => this.socketUrl({}),
      getToken: (o) => this.session.getToken(o),
      createSocket: this.createSocket,
      options,
      onSessionEnded: this.sessionEnded,
      handlers: {
        onOpen: async () => {
          await options.onConnected?.();
        },
        onFrame: async (frame) => {
          await this.observe(frame);
          await onFrame(frame);
        },
      },
    });
  }
}
