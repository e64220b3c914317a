/**
 * `parley/client`: a typed client for the Parley API that does the end-to-end encryption itself.
 * Runtime needs: Web Crypto (with X25519), `fetch` and `WebSocket`: browsers, Node 22+, Workers.
 *
 *   const client = new ParleyClient({ baseUrl: "http://127.0.0.1:8787" });
 *   const { identity } = await client.register("alice", "correct horse battery");
 *   await client.login("alice", "correct horse battery", identity);
 *   const conversation = await client.createConversation(["bob"]);
 *   await client.sendMessage(conversation.conversationId, "hello, Bob");
 *   const sub = client.subscribe(conversation.conversationId, (m) => console.log(m.senderUsername, m.text));
 *
 * The server only ever sees public keys, wrapped conversation keys and ciphertext. Formats: see
 * `crypto.ts`. Retries: see `http.ts`. Live delivery: see `socket.ts`.
 */

import type {
  AccessToken,
  Conversation,
  MembershipChange,
  MessageAck,
  MessageResponse,
  PublicUser,
  Registered,
  SendMessageRequest,
  ServerFrame,
  User,
} from "../contract/index.ts";
import { type Bytes, fromBase64, toBase64 } from "./bytes.ts";
import {
  decryptMessage,
  encryptMessage,
  generateConversationKey,
  generateIdentityKeys,
  type IdentityKeys,
  unwrapConversationKey,
  wrapConversationKey,
} from "./crypto.ts";
import { type FetchLike, HttpTransport, ParleyError, type RetryPolicy, type TokenProvider } from "./http.ts";
import {
  type ConversationFeedOptions,
  defaultWebSocketFactory,
  LiveConnection,
  type LiveOptions,
  type Subscription,
  subscribeConversationFeed,
  type WebSocketFactory,
} from "./socket.ts";

// The wire types, for apps that handle raw frames or bodies.
export type * from "../contract/index.ts";
export { CLOSE, CLOSE_REASON, ERROR_STATUS } from "../contract/index.ts";
export * from "./bytes.ts";
export * from "./crypto.ts";
export * from "./http.ts";
export * from "./socket.ts";

export interface ParleyClientOptions {
  /** Where the Parley Worker answers, e.g. `https://parley.example.com` (no trailing path). */
  baseUrl: string;
  fetch?: FetchLike;
  /** Opens a WebSocket (default: the runtime's global `WebSocket`). */
  webSocket?: WebSocketFactory;
  /**
   * Supplies access tokens instead of `login()` (for example from your own session store).
   * Without it, `login()` keeps the token and, unless `keepPassword: false`, logs in again
   * shortly before the token expires or when the server refuses it.
   */
  tokenProvider?: TokenProvider;
  retry?: Partial<RetryPolicy>;
}

export interface Session {
  userId: number;
  username: string;
  /** The public key the server holds for this account (raw bytes). */
  publicKey: Bytes;
  /** False when the server's public key differs from the identity given to `login()`. */
  identityMatches: boolean;
}

/** A message as the library delivers it: the server's metadata plus the decrypted text. */
export type ReceivedMessage = Omit<MessageResponse, "nonce" | "ciphertext" | "authTag" | "associatedData"> &
  ({ ok: true; text: string } | { ok: false; text: null; error: Error });

export interface SendOptions {
  /** Defaults to a fresh `crypto.randomUUID()`; retries reuse it so the server stores one message. */
  clientMessageId?: string;
  signal?: AbortSignal;
}

export interface SendResult extends MessageAck {
  clientMessageId: string;
}

export interface SubscribeOptions extends ConversationFeedOptions {
  /** Membership frames of this conversation (`participantAdded`, `participantRemoved`). */
  onMembership?: (event: { type: "participantAdded" | "participantRemoved"; data: MembershipChange }) => void;
}

export interface InboxOptions extends LiveOptions {
  /**
   * Runs once the inbox socket is admitted, after every reconnect too: frames may have been
   * missed while it was down, so reload what you show (`listConversations()`, then `after`).
   */
  onConnected?: () => void | Promise<void>;
}

/** Tokens are renewed this long before they expire. */
const TOKEN_MARGIN_MS = 60_000;

function jwtExpiry(token: string): number | undefined {
  try {
    const payload = token.split(".")[1] ?? "";
    const padded = payload
      .replace(/-/g, "+")
      .replace(/_/g, "/")
      .padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const exp = (JSON.parse(atob(padded)) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class ParleyClient {
  readonly http: HttpTransport;
  private readonly options: ParleyClientOptions;
  private readonly createSocket: WebSocketFactory;
  private token: { value: string; expiresAt: number } | undefined;
  private credentials: { username: string; password: string } | undefined;
  private loginInFlight: Promise<string> | undefined;
  private identity: IdentityKeys | undefined;
  private self: { userId: number; username: string } | undefined;
  private readonly conversationKeys = new Map<number, Promise<CryptoKey>>();

  constructor(options: ParleyClientOptions) {
    this.options = options;
    this.createSocket = options.webSocket ?? defaultWebSocketFactory;
    this.http = new HttpTransport({
      baseUrl: options.baseUrl,
      getToken: (o) => this.getToken(o),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
    });
  }

  // ---- accounts -------------------------------------------------------------------------------

  /**
   * Creates an account with a freshly generated X25519 identity (or the one given). Keep the
   * returned identity: without its private key nothing sent to this account can be read. In a
   * browser, store it in IndexedDB as is (the private key stays non-extractable).
   */
  async register(
    username: string,
    password: string,
    options: { identity?: IdentityKeys } = {},
  ): Promise<Registered & { identity: IdentityKeys }> {
    const identity = options.identity ?? (await generateIdentityKeys());
    const res = await this.http.request<Registered>("POST", "/auth/register", {
      auth: false,
      body: { username, password, publicKey: toBase64(identity.publicKeyRaw) },
    });
    return { ...res, identity };
  }

  /**
   * Logs in and loads the account (`GET /users/me`). `identity` is the key pair this device holds
   * for the account; without one the client can still call the API but not encrypt or decrypt.
   */
  async login(
    username: string,
    password: string,
    identity?: IdentityKeys,
    options: { keepPassword?: boolean } = {},
  ): Promise<Session> {
    this.logout();
    const login = await this.http.request<AccessToken>("POST", "/auth/login", {
      auth: false,
      body: { username, password },
    });
    this.setToken(login.accessToken, login.expiresIn);
    if (options.keepPassword ?? true) this.credentials = { username, password };
    if (identity) this.identity = identity;
    return this.loadSession();
  }

  /** Uses an access token obtained elsewhere (no automatic re-login once it expires). */
  async useToken(accessToken: string, identity?: IdentityKeys): Promise<Session> {
    this.logout();
    this.setToken(accessToken);
    if (identity) this.identity = identity;
    return this.loadSession();
  }

  /** Forgets the token, the password, the identity and every conversation key held in memory. */
  logout(): void {
    this.token = undefined;
    this.credentials = undefined;
    this.identity = undefined;
    this.self = undefined;
    this.conversationKeys.clear();
  }

  setIdentity(identity: IdentityKeys): void {
    this.identity = identity;
    this.conversationKeys.clear();
  }

  get userId(): number | undefined {
    return this.self?.userId;
  }

  get username(): string | undefined {
    return this.self?.username;
  }

  /** A valid access token: the provider's, or the cached one, renewed by logging in again if needed. */
  async getToken(options: { forceRefresh: boolean } = { forceRefresh: false }): Promise<string> {
    if (this.options.tokenProvider) return this.options.tokenProvider(options);
    if (this.token && !options.forceRefresh && this.token.expiresAt - Date.now() > TOKEN_MARGIN_MS)
      return this.token.value;
    if (!this.credentials) {
      if (this.token && !options.forceRefresh && this.token.expiresAt > Date.now()) return this.token.value;
      throw new ParleyError(401, "unauthorized", "not logged in, or the session expired: log in again");
    }
    const { username, password } = this.credentials;
    this.loginInFlight ??= this.http
      .request<AccessToken>("POST", "/auth/login", { auth: false, body: { username, password } })
      .then((res) => {
        this.setToken(res.accessToken, res.expiresIn);
        return res.accessToken;
      })
      .finally(() => (this.loginInFlight = undefined));
    return this.loginInFlight;
  }

  private setToken(value: string, expiresIn?: number): void {
    const expiresAt = jwtExpiry(value) ?? Date.now() + (expiresIn ?? 3600) * 1000;
    this.token = { value, expiresAt };
  }

  private async loadSession(): Promise<Session> {
    const me = await this.me();
    this.self = { userId: me.userId, username: me.username };
    const publicKey = fromBase64(me.publicKey);
    const identityMatches = this.identity ? toBase64(this.identity.publicKeyRaw) === me.publicKey : false;
    return { userId: me.userId, username: me.username, publicKey, identityMatches };
  }

  me(): Promise<User> {
    return this.http.request<User>("GET", "/users/me");
  }

  /** Replaces the account's public key (a new device identity). Conversations keyed to the old one become unreadable here. */
  async updatePublicKey(identity: IdentityKeys): Promise<User> {
    const me = await this.http.request<User>("PUT", "/users/me/public-key", {
      body: { publicKey: toBase64(identity.publicKeyRaw) },
    });
    this.setIdentity(identity);
    return me;
  }

  lookupUser(username: string): Promise<PublicUser> {
    return this.http.request<PublicUser>("GET", `/users/${encodeURIComponent(username)}`);
  }

  /** A user's raw public key, as the server reports it (compare `fingerprint()`s out of band to detect a swap). */
  async publicKeyOf(username: string): Promise<Bytes> {
    return fromBase64((await this.lookupUser(username)).publicKey);
  }

  // ---- conversations --------------------------------------------------------------------------

  private requireIdentity(): IdentityKeys {
    if (!this.identity) throw new Error("no identity keys: pass them to login() or setIdentity()");
    return this.identity;
  }

  private requireSelf(): { userId: number; username: string } {
    if (!this.self) throw new Error("not logged in");
    return this.self;
  }

  /**
   * Creates a conversation with the given users (the caller is added): a fresh random
   * conversation key is wrapped for each participant's public key, the caller's own included.
   */
  async createConversation(usernames: string[], options: { title?: string } = {}): Promise<Conversation> {
    const identity = this.requireIdentity();
    const self = this.requireSelf();
    const others = [...new Map(usernames.map((u) => [u.toLowerCase(), u] as const)).entries()]
      .filter(([lower]) => lower !== self.username.toLowerCase())
      .map(([, u]) => u);
    if (others.length === 0) throw new TypeError("name at least one other participant");
    const key = await generateConversationKey();
    const participants = [
      { username: self.username, encryptedKey: toBase64(await wrapConversationKey(key, identity.publicKeyRaw)) },
    ];
    for (const username of others) {
      participants.push({
        username,
        encryptedKey: toBase64(await wrapConversationKey(key, await this.publicKeyOf(username))),
      });
    }
    const conversation = await this.http.request<Conversation>("POST", "/conversations", {
      body: { ...(options.title ? { title: options.title } : {}), participants },
    });
    this.conversationKeys.set(conversation.conversationId, this.unwrap(conversation));
    return conversation;
  }

  listConversations(): Promise<Conversation[]> {
    return this.http.request<Conversation[]>("GET", "/conversations");
  }

  getConversation(conversationId: number): Promise<Conversation> {
    return this.http.request<Conversation>("GET", `/conversations/${conversationId}`);
  }

  private unwrap(conversation: Conversation, extractable = false): Promise<CryptoKey> {
    return unwrapConversationKey(fromBase64(conversation.encryptedKey), this.requireIdentity(), { extractable });
  }

  /** The conversation's key, unwrapped with this device's identity (cached in memory). */
  conversationKey(conversation: number | Conversation): Promise<CryptoKey> {
    const id = typeof conversation === "number" ? conversation : conversation.conversationId;
    let key = this.conversationKeys.get(id);
    if (!key) {
      key = (async () =>
        this.unwrap(typeof conversation === "number" ? await this.getConversation(id) : conversation))();
      key.catch(() => this.conversationKeys.delete(id));
      this.conversationKeys.set(id, key);
    }
    return key;
  }

  /** Adds a participant, wrapping the current conversation key for them (they can read the history). */
  async addParticipant(conversationId: number, username: string): Promise<Conversation> {
    const conversation = await this.getConversation(conversationId);
    const key = await this.unwrap(conversation, true);
    const encryptedKey = toBase64(await wrapConversationKey(key, await this.publicKeyOf(username)));
    return this.http.request<Conversation>("POST", `/conversations/${conversationId}/participants`, {
      body: { username, encryptedKey },
    });
  }

  /** Removes a participant (or the caller: leaving). */
  async removeParticipant(conversationId: number, username: string): Promise<void> {
    await this.http.request<void>(
      "DELETE",
      `/conversations/${conversationId}/participants/${encodeURIComponent(username)}`,
    );
    if (username.toLowerCase() === this.self?.username.toLowerCase()) this.conversationKeys.delete(conversationId);
  }

  // ---- messages -------------------------------------------------------------------------------

  /**
   * Encrypts and sends a text message. Network errors, 5xx and 429 are retried with the same
   * `clientMessageId`, so the server stores the message once however often it is sent.
   */
  async sendMessage(conversationId: number, text: string, options: SendOptions = {}): Promise<SendResult> {
    if (text === "") throw new TypeError("a message cannot be empty");
    const self = this.requireSelf();
    const key = await this.conversationKey(conversationId);
    const sealed = await encryptMessage(key, text, { conversationId, senderId: self.userId });
    const clientMessageId = options.clientMessageId ?? crypto.randomUUID();
    const body: SendMessageRequest = {
      conversationId,
      nonce: toBase64(sealed.nonce),
      ciphertext: toBase64(sealed.ciphertext),
      authTag: toBase64(sealed.authTag),
      associatedData: toBase64(sealed.associatedData),
      clientMessageId,
    };
    const res = await this.http.request<MessageAck>("POST", "/messages", {
      body,
      idempotent: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { ...res, clientMessageId };
  }

  /** Decrypts one message of the API; failures are reported in the result, not thrown. */
  async decrypt(message: MessageResponse): Promise<ReceivedMessage> {
    const { nonce, ciphertext, authTag, associatedData, ...meta } = message;
    try {
      const key = await this.conversationKey(message.conversationId);
      const text = await decryptMessage(
        key,
        {
          nonce: fromBase64(nonce),
          ciphertext: fromBase64(ciphertext),
          authTag: fromBase64(authTag),
          associatedData: associatedData === null ? null : fromBase64(associatedData),
        },
        { conversationId: message.conversationId, senderId: message.senderId },
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
    const suffix = qs.toString() ? `?${qs}` : "";
    return this.http.request<MessageResponse[]>("GET", `/conversations/${conversationId}/messages${suffix}`);
  }

  /** Decrypted history, in the API's order for the query. */
  async messages(
    conversationId: number,
    query: { limit?: number; before?: number; after?: number } = {},
  ): Promise<ReceivedMessage[]> {
    const raw = await this.rawMessages(conversationId, query);
    return Promise.all(raw.map((m) => this.decrypt(m)));
  }

  // ---- live -----------------------------------------------------------------------------------

  private socketUrl(params: Record<string, string>): string {
    const url = new URL(`${this.http.baseUrl}/ws`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.toString();
  }

  /**
   * Delivers a conversation's messages live, decrypted, each once and in `seq` order: the socket
   * is opened first, then everything after `options.after` (default: the whole history) is
   * fetched; gaps are filled; disconnects are recovered with backoff and a fresh token. Stops for
   * good on 1008 (refused) or 4003 (removed) and calls `options.onClose` with the reason.
   */
  subscribe(
    conversationId: number,
    onMessage: (message: ReceivedMessage) => void | Promise<void>,
    options: SubscribeOptions = {},
  ): Subscription & { readonly lastMessageId: number } {
    return subscribeConversationFeed({
      conversationId,
      url: (token) => this.socketUrl({ conversationId: String(conversationId), token }),
      getToken: (o) => this.getToken(o),
      createSocket: this.createSocket,
      fetchMessages: (query) => this.rawMessages(conversationId, query),
      onMessage: async (message) => onMessage(await this.decrypt(message)),
      onEvent: (frame) => {
        if (frame.type === "participantAdded" || frame.type === "participantRemoved") options.onMembership?.(frame);
      },
      options,
    });
  }

  /**
   * The user's inbox socket: every conversation's frames on one connection (`newMessage`,
   * `participantAdded`, `participantRemoved`, `conversationCreated`), raw. It reconnects like
   * `subscribe()` but does not catch up by itself: use `onConnected` to reload.
   */
  watchInbox(onFrame: (frame: ServerFrame) => void | Promise<void>, options: InboxOptions = {}): Subscription {
    return new LiveConnection({
      url: (token) => this.socketUrl({ token }),
      getToken: (o) => this.getToken(o),
      createSocket: this.createSocket,
      options,
      handlers: {
        onOpen: async () => {
          await options.onConnected?.();
        },
        onFrame: async (frame) => {
          if (frame.type === "conversationCreated") this.conversationKeys.delete(frame.data.conversationId);
          await onFrame(frame);
        },
      },
    });
  }
}
