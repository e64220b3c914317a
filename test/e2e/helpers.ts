import { randomBytes } from "node:crypto";
import { inject } from "vitest";

// The wire contract, shared by the server and the client library.
import type { Conversation, MessageResponse, ServerFrame } from "../../contract/index.ts";

export type { Conversation, MessageResponse };
export type Frame = ServerFrame;

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface TestUser {
  userId: number;
  username: string;
  token: string;
}

export const baseUrl = (): string => inject("baseUrl");

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
export const randomB64 = (n: number): string => b64(randomBytes(n));

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

function expectStatus(res: ApiResponse, status: number, what: string): void {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** Registers and logs in a fresh user with a unique name. */
export async function newUser(prefix = "user"): Promise<TestUser> {
  const username = uniqueName(prefix);
  const password = `pw-${randomB64(12)}`;
  const registered = await api<{ userId: number; username: string }>("POST", "/auth/register", {
    body: { username, password, publicKey: randomB64(32) },
  });
  expectStatus(registered, 201, `register ${username}`);
  const login = await api<{ accessToken: string }>("POST", "/auth/login", { body: { username, password } });
  expectStatus(login, 200, `login ${username}`);
  return { userId: registered.body.userId, username, token: login.body.accessToken };
}

export async function newUsers(n: number, prefix = "user"): Promise<TestUser[]> {
  const users: TestUser[] = [];
  for (let i = 0; i < n; i++) users.push(await newUser(prefix));
  return users;
}

export interface CreatedConversation extends Conversation {
  /** Each participant's own wrapped key, as sent, by username. */
  keys: Map<string, string>;
}

/** `creator` creates a conversation with `others`; every participant gets a distinct wrapped key. */
export async function createConversation(
  creator: TestUser,
  others: TestUser[],
  title?: string,
): Promise<CreatedConversation> {
  const keys = new Map([creator, ...others].map((u) => [u.username, randomB64(48)]));
  const res = await api<Conversation>("POST", "/conversations", {
    token: creator.token,
    body: {
      ...(title === undefined ? {} : { title }),
      participants: [...keys].map(([username, encryptedKey]) => ({ username, encryptedKey })),
    },
  });
  expectStatus(res, 201, "create conversation");
  return { ...res.body, keys };
}

export interface SentMessage {
  conversationId: number;
  nonce: string;
  ciphertext: string;
  authTag: string;
  associatedData: string | null;
  clientMessageId: string | null;
}

export interface PostedMessage {
  messageId: number;
  seq: number;
  timestamp: string;
  sent: SentMessage;
  sender: TestUser;
}

/** Posts a message of random bytes (with associated data and a client id every other time). */
export async function postMessage(
  sender: TestUser,
  conversationId: number,
  options: { withExtras?: boolean } = {},
): Promise<PostedMessage> {
  const withExtras = options.withExtras ?? counter % 2 === 0;
  counter += 1;
  const sent: SentMessage = {
    conversationId,
    nonce: randomB64(12 + (counter % 13)),
    ciphertext: randomB64(1 + ((counter * 37) % 300)),
    authTag: randomB64(16),
    associatedData: withExtras ? randomB64(20) : null,
    clientMessageId: withExtras ? `cm-${randomB64(9)}` : null,
  };
  const body: Record<string, unknown> = {
    conversationId,
    nonce: sent.nonce,
    ciphertext: sent.ciphertext,
    authTag: sent.authTag,
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
  return url.replace(/token=[^&]*/, "token=…");
}
