import { exports } from "cloudflare:workers";

let counter = 0;

/** A username no other test uses, so tests can run alone or in any order. */
export function uniqueName(prefix = "user"): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}_${counter}`.slice(0, 32);
}

/** Bytes as standard base64. */
export function b64(bytes: Uint8Array | number[]): string {
  return btoa(String.fromCharCode(...bytes));
}

export function randomBytes(length: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(length));
}

function randomIp(): string {
  const [a, b, c] = randomBytes(3);
  return `10.${a}.${b}.${c}`;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Calls the Worker in the test runtime; `body` is sent as JSON unless it is already a string. */
export async function call(method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers = new Headers(options.headers);
  // Each call comes from its own address unless a test picks one, so the per-IP limit on
  // register/login only bites where a test means it to.
  if (!headers.has("CF-Connecting-IP")) headers.set("CF-Connecting-IP", randomIp());
  if (options.token) headers.set("Authorization", `Bearer ${options.token}`);
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  }
  return exports.default.fetch(new Request(`http://parley.test${path}`, { method, headers, body }));
}

export async function json<T = any>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

export interface TestUser {
  userId: number;
  username: string;
  password: string;
  publicKey: string;
  token: string;
}

/** Registers and logs in a fresh user. */
export async function registerUser(prefix = "user"): Promise<TestUser> {
  const username = uniqueName(prefix);
  const password = "correct horse battery";
  const publicKey = b64(randomBytes(32));
  const registered = await call("POST", "/auth/register", { body: { username, password, publicKey } });
  if (registered.status !== 201) throw new Error(`register failed: ${registered.status} ${await registered.text()}`);
  const { userId } = await json(registered);
  const login = await call("POST", "/auth/login", { body: { username, password } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status}`);
  const { accessToken } = await json(login);
  return { userId, username, password, publicKey, token: accessToken };
}

/** Creates a conversation of `creator` and `others`, each with a random wrapped key. */
export async function createConversation(creator: TestUser, ...others: TestUser[]): Promise<number> {
  const participants = [creator, ...others].map((u) => ({ username: u.username, encryptedKey: b64(randomBytes(48)) }));
  const res = await call("POST", "/conversations", { token: creator.token, body: { participants } });
  if (res.status !== 201) throw new Error(`create conversation failed: ${res.status} ${await res.text()}`);
  return (await json(res)).conversationId;
}

export function messageBody(conversationId: number, extra: Record<string, unknown> = {}) {
  return {
    conversationId,
    nonce: b64(randomBytes(12)),
    ciphertext: b64(randomBytes(64)),
    authTag: b64(randomBytes(16)),
    ...extra,
  };
}

/** Posts a message and returns the response with its parsed body. */
export async function sendMessage(user: TestUser, conversationId: number, extra: Record<string, unknown> = {}) {
  const res = await call("POST", "/messages", { token: user.token, body: messageBody(conversationId, extra) });
  return { status: res.status, body: await json(res) };
}

/** Asserts the contract's error shape and returns the code. */
export async function errorOf(
  response: Response,
): Promise<{ code: string; message: string; details?: { path: string; message: string }[] }> {
  const body = await json(response);
  if (!body?.error || typeof body.error.code !== "string" || typeof body.error.message !== "string") {
    throw new Error(`not the contract's error shape: ${JSON.stringify(body)}`);
  }
  return body.error;
}

/** An ISO 8601 UTC timestamp with milliseconds, as the contract writes them. */
export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One page of `GET /conversations/{id}/messages`; `query` is the raw query string without `?`. */
export async function history(user: TestUser, conversationId: number, query = ""): Promise<any[]> {
  const res = await call("GET", `/conversations/${conversationId}/messages${query ? `?${query}` : ""}`, {
    token: user.token,
  });
  if (res.status !== 200) throw new Error(`history failed: ${res.status} ${await res.text()}`);
  return json(res);
}

/** `GET /conversations/{id}` as `user`, asserting 200. */
export async function getConversation(user: TestUser, conversationId: number): Promise<any> {
  const res = await call("GET", `/conversations/${conversationId}`, { token: user.token });
  if (res.status !== 200) throw new Error(`get conversation failed: ${res.status} ${await res.text()}`);
  return json(res);
}

/** Registers and logs in one fresh user per prefix, concurrently. */
export function registerUsers<const P extends readonly string[]>(
  ...prefixes: P
): Promise<{ -readonly [K in keyof P]: TestUser }> {
  return Promise.all(prefixes.map((p) => registerUser(p))) as Promise<any>;
}
