import { randomBytes } from "node:crypto";
import { inject } from "vitest";

// The wire contract, shared by the server and the client library.
import type { Conversation, MessageResponse, PublicUser, ServerFrame, Session } from "../../contract/index.ts";
import { b64, newIdentity, type RawIdentity, randomB64, randomKeys, randomSignature } from "../../tools/wire/index.ts";

export type { Conversation, MessageResponse, Session };
export type Frame = ServerFrame;
export { b64, randomB64 };

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** A user with one active device and a session on it (raw protocol: random bytes stand in for keys). */
export interface TestUser {
  userId: number;
  username: string;
  password: string;
  deviceId: number;
  /** The session's access token. */
  token: string;
  refreshToken: string;
  sessionId: number;
  /** The account key: signs further devices (approval). */
  identity: RawIdentity;
}

export const baseUrl = (): string => inject("baseUrl");

let counter = 0;
/** A username no other test (or earlier run against the same storage) uses: 3–32 of [a-zA-Z0-9_.-]. */
export function uniqueName(prefix: string): string {
  counter += 1;
  const name = `${prefix.slice(0, 8)}_${Date.now().toString(36)}${counter.toString(36)}${randomBytes(3).toString("hex")}`;
  return name.slice(0, 32);
}

/** A JSON request; the body is parsed when the answer is JSON, otherwise `null`. */
export async function api<T = unknown>(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${baseUrl()}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  const isJson = (res.headers.get("Content-Type") ?? "").startsWith("application/json");
  return { status: res.status, headers: res.headers, body: (isJson && text ? JSON.parse(text) : null) as T };
}

export function expectStatus(res: ApiResponse, status: number, what: string): void {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** Logs in on a known device: a new session (its own access and refresh tokens). */
export async function login(user: Pick<TestUser, "username" | "password" | "deviceId">): Promise<Session> {
  const res = await api<Session>("POST", "/auth/login", {
    body: { username: user.username, password: user.password, deviceId: user.deviceId },
  });
  expectStatus(res, 200, `login ${user.username}`);
  return res.body;
}

/** Registers a fresh user (account key, one signed device) with a unique name and logs in on that device. */
export async function newUser(prefix = "user"): Promise<TestUser> {
  const username = uniqueName(prefix);
  const password = `pw-${randomB64(12)}`;
  const identity = newIdentity();
  const { accountKey, device } = identity;
  const registered = await api<{ userId: number; username: string; deviceId: number }>("POST", "/auth/register", {
    body: { username, password, accountKey, device },
  });
  expectStatus(registered, 201, `register ${username}`);
  const { userId, deviceId } = registered.body;
  const session = await login({ username, password, deviceId });
  return {
    userId,
    username,
    password,
    deviceId,
    token: session.accessToken,
    refreshToken: session.refreshToken,
    sessionId: session.sessionId,
    identity,
  };
}

export async function newUsers(n: number, prefix = "user"): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (let i = 0; i < n; i++) users.push(await newUser(prefix));
  return users;
}

/** The active device ids of a user, as anyone may look them up. */
export async function activeDevices(asker: TestUser, username: string): Promise<number[]> {
  const res = await api<PublicUser>("GET", `/users/${username}`, { token: asker.token });
  expectStatus(res, 200, `look up ${username}`);
  return res.body.devices.map((d) => d.deviceId);
}

export interface CreatedConversation extends Conversation {
  /** Each device's wrapped key of epoch 1, as sent, by device id. */
  keys: Map<number, string>;
}

/**
 * `creator` creates a conversation with `others`; every active device of every participant gets a
 * distinct wrapped key. Each of the others then accepts it (contract v2's consent: a participant
 * who never accepted a conversation with the creator joins `invited` and cannot post); pass
 * `{ accept: false }` to leave the message requests pending.
 */
export async function createConversation(
  creator: TestUser,
  others: TestUser[],
  title?: string,
  options: { accept?: boolean } = {},
): Promise<CreatedConversation> {
  const participants = [creator, ...others].map((u) => u.username);
  const deviceIds: number[] = [];
  for (const username of participants) deviceIds.push(...(await activeDevices(creator, username)));
  const keys = randomKeys(deviceIds);
  const res = await api<Conversation>("POST", "/conversations", {
    token: creator.token,
    body: { ...(title === undefined ? {} : { title }), participants, keys },
  });
  expectStatus(res, 201, "create conversation");
  if (options.accept ?? true) {
    for (const other of others) {
      const accepted = await api("POST", `/conversations/${res.body.conversationId}/accept`, { token: other.token });
      expectStatus(accepted, 200, `${other.username} accepts`);
    }
  }
  return { ...res.body, keys: new Map(keys.map((k) => [k.deviceId, k.wrappedKey])) };
}

/** Commits the next epoch of a conversation with random wraps for exactly its current devices. */
export async function rotate(user: TestUser, conversationId: number): Promise<number> {
  const conversation = await api<Conversation>("GET", `/conversations/${conversationId}`, { token: user.token });
  expectStatus(conversation, 200, "get conversation");
  const devices = await api<{ deviceId: number }[]>("GET", `/conversations/${conversationId}/devices`, {
    token: user.token,
  });
  expectStatus(devices, 200, "conversation devices");
  const epoch = conversation.body.epoch + 1;
  const res = await api<{ epoch: number }>("POST", `/conversations/${conversationId}/epochs`, {
    token: user.token,
    body: { epoch, keys: randomKeys(devices.body.map((d) => d.deviceId)) },
  });
  expectStatus(res, 201, "commit epoch");
  return epoch;
}

export interface SentMessage {
  conversationId: number;
  keyEpoch: number;
  nonce: string;
  ciphertext: string;
  authTag: string;
  associatedData: string | null;
  signature: string;
  clientMessageId: string | null;
}

export interface PostedMessage {
  messageId: number;
  seq: number;
  timestamp: string;
  sent: SentMessage;
  sender: TestUser;
}

/**
 * Posts a message of random bytes under `keyEpoch` (default 1: a conversation never rotated), with a
 * random 64-byte signature, and associated data and a client id every other time.
 */
export async function postMessage(
  sender: TestUser,
  conversationId: number,
  options: { withExtras?: boolean; keyEpoch?: number } = {},
): Promise<PostedMessage> {
  const withExtras = options.withExtras ?? counter % 2 === 0;
  counter += 1;
  const sent: SentMessage = {
    conversationId,
    keyEpoch: options.keyEpoch ?? 1,
    nonce: randomB64(12 + (counter % 13)),
    ciphertext: randomB64(1 + ((counter * 37) % 300)),
    authTag: randomB64(16),
    associatedData: withExtras ? randomB64(20) : null,
    signature: randomSignature(),
    clientMessageId: withExtras ? `cm-${randomB64(9)}` : null,
  };
  const body: Record<string, unknown> = {
    conversationId,
    keyEpoch: sent.keyEpoch,
    nonce: sent.nonce,
    ciphertext: sent.ciphertext,
    authTag: sent.authTag,
    signature: sent.signature,
  };
  if (sent.associatedData !== null) body.associatedData = sent.associatedData;
  if (sent.clientMessageId !== null) body.clientMessageId = sent.clientMessageId;
  const res = await api<{ messageId: number; seq: number; timestamp: string }>("POST", "/messages", {
    token: sender.token,
    body,
  });
  expectStatus(res, 201, "post message");
  return { ...res.body, sent, sender };
}

export async function getMessages(
  user: TestUser,
  conversationId: number,
  query: Record<string, string | number>,
): Promise<MessageResponse[]> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const res = await api<MessageResponse[]>("GET", `/conversations/${conversationId}/messages?${qs}`, {
    token: user.token,
  });
  expectStatus(res, 200, "list messages");
  return res.body;
}

/** `ws://…/ws?…` for the running server. */
export function wsUrl(params: Record<string, string | number>): string {
  const qs = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
  return `${baseUrl().replace(/^http/, "ws")}/ws?${qs}`;
}

export const conversationSocketUrl = (user: TestUser, conversationId: number) =>
  wsUrl({ conversationId, token: user.token });
export const inboxSocketUrl = (user: TestUser) => wsUrl({ token: user.token });

/** A single-use socket ticket for the user's session (`POST /ws/tickets`). */
export async function ticket(user: TestUser): Promise<string> {
  const res = await api<{ ticket: string }>("POST", "/ws/tickets", { token: user.token });
  expectStatus(res, 201, "socket ticket");
  return res.body.ticket;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface TestSocket {
  ws: WebSocket;
  /** Every text frame received, in order, as sent (`pong` included). */
  texts: string[];
  /** The JSON frames among them, parsed, in order. */
  frames: Frame[];
  /** Resolves once the handshake completed; rejects if the socket failed or closed before that. */
  opened: Promise<void>;
  /** Resolves with the close code and reason (never rejects). */
  closed: Promise<CloseInfo>;
  isClosed(): boolean;
  /**
   * Resolves with the predicate's first truthy result, checked now and after every frame. Rejects
   * after `timeoutMs`, or as soon as the socket closes with the predicate still unmet.
   */
  waitFor<T>(
    predicate: (frames: Frame[], texts: string[]) => T | undefined | null | false,
    timeoutMs?: number,
  ): Promise<T>;
  send(text: string): void;
  close(code?: number, reason?: string): Promise<CloseInfo>;
}

/** Connects with Node's global `WebSocket` and records frames; does not wait for the handshake. */
export function connectSocket(url: string): TestSocket {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const texts: string[] = [];
  const frames: Frame[] = [];
  const listeners = new Set<() => void>();
  let isOpen = false;
  let closeInfo: CloseInfo | undefined;
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };

  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => {
      isOpen = true;
      resolve();
    });
    ws.addEventListener("error", () => {
      if (!isOpen) reject(new Error(`WebSocket to ${redact(url)} failed before opening`));
    });
    ws.addEventListener("close", (e) => {
      if (!isOpen) reject(new Error(`WebSocket to ${redact(url)} closed (${e.code} ${e.reason}) before opening`));
    });
  });
  opened.catch(() => {}); // Callers that only care about `closed` need not handle it.

  const closed = new Promise<CloseInfo>((resolve) => {
    ws.addEventListener("close", (e) => {
      closeInfo = { code: e.code, reason: e.reason };
      resolve(closeInfo);
      notify();
    });
  });

  ws.addEventListener("message", (e: MessageEvent) => {
    const text = typeof e.data === "string" ? e.data : Buffer.from(e.data as ArrayBuffer).toString("utf8");
    texts.push(text);
    try {
      frames.push(JSON.parse(text) as Frame);
    } catch {
      // `pong` and anything else that is not JSON stays in `texts` only.
    }
    notify();
  });

  const socket: TestSocket = {
    ws,
    texts,
    frames,
    opened,
    closed,
    isClosed: () => closeInfo !== undefined,
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const finish = (fn: () => void) => {
          listeners.delete(check);
          clearTimeout(timer);
          fn();
        };
        const describe = () =>
          `${frames.length} frames (${summarise(frames)}), texts: ${JSON.stringify(texts.filter((t) => !t.startsWith("{")))}`;
        const check = () => {
          let result: ReturnType<typeof predicate>;
          try {
            result = predicate(frames, texts);
          } catch (err) {
            finish(() => reject(err));
            return;
          }
          if (result) finish(() => resolve(result));
          else if (closeInfo) {
            finish(() =>
              reject(
                new Error(
                  `socket closed (${closeInfo!.code} ${closeInfo!.reason}) before the awaited frames; had ${describe()}`,
                ),
              ),
            );
          }
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`waitFor timed out after ${timeoutMs} ms; had ${describe()}`))),
          timeoutMs,
        );
        listeners.add(check);
        check();
      });
    },
    send: (text) => ws.send(text),
    close(code = 1000, reason = "") {
      if (!closeInfo) ws.close(code, reason);
      return closed;
    },
  };
  return socket;
}

/** Connects and waits for the handshake to complete. */
export async function openSocket(url: string): Promise<TestSocket> {
  const socket = connectSocket(url);
  await socket.opened;
  return socket;
}

/** Closes the sockets a test opened, whatever state they are in. */
export async function closeAll(sockets: Iterable<TestSocket>): Promise<void> {
  await Promise.all([...sockets].map((s) => Promise.race([s.close(), new Promise((r) => setTimeout(r, 2_000))])));
}

/** The `newMessage` payloads among `frames`, optionally of one conversation only. */
export function newMessages(frames: Frame[], conversationId?: number): MessageResponse[] {
  return frames.flatMap((f) =>
    f.type === "newMessage" && (conversationId === undefined || f.data.conversationId === conversationId)
      ? [f.data]
      : [],
  );
}

/** Resolves with the first `count` messages of the conversation once that many arrived. */
export function waitForMessages(
  socket: TestSocket,
  count: number,
  conversationId?: number,
  timeoutMs = 10_000,
): Promise<MessageResponse[]> {
  return socket.waitFor((frames) => {
    const found = newMessages(frames, conversationId);
    return found.length >= count ? found : undefined;
  }, timeoutMs);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function summarise(frames: Frame[]): string {
  return frames
    .map((f) => (f.type === "newMessage" ? `newMessage#${f.data.conversationId}/${f.data.seq}` : f.type))
    .join(", ");
}

/** Never print a token. */
function redact(url: string): string {
  return url.replace(/(token|ticket)=[^&]*/, "$1=…");
}
