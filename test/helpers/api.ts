import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { app } from "../../src/app";

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
  /**
   * Bindings or vars to replace for this call (a failing D1, another SHARD_PLACEMENT): the app then
   * runs on a fresh env object, with its own parsed config and database handles.
   */
  env?: Record<string, unknown>;
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
  const request = new Request(`http://parley.test${path}`, { method, headers, body });
  if (!options.env) return exports.default.fetch(request);
  const ctx = createExecutionContext();
  const res = await app.fetch(request, { ...env, ...options.env }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export async function json<T = any>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

const DEVICE_CONTEXT = new TextEncoder().encode("parley-device-v1");

async function rawPublic(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array((await crypto.subtle.exportKey("raw", key)) as ArrayBuffer);
}

/** A device's key pairs: X25519 identity (wrapping) and Ed25519 signing, as a client makes them. */
export interface DeviceKeys {
  name: string;
  identityKey: string;
  signingKey: string;
  signingPair: CryptoKeyPair;
}

export async function makeDeviceKeys(name = "test device"): Promise<DeviceKeys> {
  const identity = (await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"])) as CryptoKeyPair;
  const signing = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  return {
    name,
    identityKey: b64(await rawPublic(identity.publicKey)),
    signingKey: b64(await rawPublic(signing.publicKey)),
    signingPair: signing,
  };
}

export async function makeAccountKey(): Promise<{ pair: CryptoKeyPair; publicKey: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  return { pair, publicKey: b64(await rawPublic(pair.publicKey)) };
}

function fromB64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
}

/** The account key's signature over "parley-device-v1" ‖ identityKey ‖ signingKey. */
export async function signDevice(accountKey: CryptoKeyPair, device: { identityKey: string; signingKey: string }) {
  const data = new Uint8Array([...DEVICE_CONTEXT, ...fromB64(device.identityKey), ...fromB64(device.signingKey)]);
  return b64(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, accountKey.privateKey, data)));
}

/** A registration body with properly made and signed keys. */
export async function registrationBody(username: string, password: string) {
  const account = await makeAccountKey();
  const device = await makeDeviceKeys();
  const signature = await signDevice(account.pair, device);
  const body = {
    username,
    password,
    accountKey: account.publicKey,
    device: { name: device.name, identityKey: device.identityKey, signingKey: device.signingKey, signature },
  };
  return { body, account, device };
}

export interface TestUser {
  userId: number;
  username: string;
  password: string;
  /** The account key (Ed25519), base64, and its pair. */
  accountKey: string;
  account: CryptoKeyPair;
  device: DeviceKeys;
  deviceId: number;
  sessionId: number;
  token: string;
  refreshToken: string;
}

/** Registers a fresh user (account key and first device made and signed with Web Crypto) and logs in on that device. */
export async function registerUser(prefix = "user"): Promise<TestUser> {
  const username = uniqueName(prefix);
  const password = "correct horse battery";
  const { body, account, device } = await registrationBody(username, password);
  const registered = await call("POST", "/auth/register", { body });
  if (registered.status !== 201) throw new Error(`register failed: ${registered.status} ${await registered.text()}`);
  const { userId, deviceId } = await json(registered);
  const login = await call("POST", "/auth/login", { body: { username, password, deviceId } });
  if (login.status !== 200) throw new Error(`login failed: ${login.status}`);
  const session = await json(login);
  return {
    userId,
    username,
    password,
    accountKey: body.accountKey,
    account: account.pair,
    device,
    deviceId,
    sessionId: session.sessionId,
    token: session.accessToken,
    refreshToken: session.refreshToken,
  };
}

/** Logs `user` in again on a new, pending device: the same user as seen from that device. */
export async function loginPendingDevice(user: TestUser, name = "new device"): Promise<TestUser> {
  const device = await makeDeviceKeys(name);
  const res = await call("POST", "/auth/login", {
    body: {
      username: user.username,
      password: user.password,
      device: { name, identityKey: device.identityKey, signingKey: device.signingKey },
    },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const session = await json(res);
  return {
    ...user,
    device,
    deviceId: session.deviceId,
    sessionId: session.sessionId,
    token: session.accessToken,
    refreshToken: session.refreshToken,
  };
}

/** A wrapped key (random bytes: opaque to the server) signed by the wrapping device. */
export async function wrapFor(wrapper: TestUser, deviceId: number) {
  const wrappedKey = b64(randomBytes(48));
  const signature = b64(
    new Uint8Array(
      await crypto.subtle.sign({ name: "Ed25519" }, wrapper.device.signingPair.privateKey, fromB64(wrappedKey)),
    ),
  );
  return { deviceId, wrappedKey, signature };
}

/** The active device ids of some users, as `GET /users/{username}` lists them. */
export async function activeDeviceIds(viewer: TestUser, ...users: { username: string }[]): Promise<number[]> {
  const ids: number[] = [];
  for (const user of users) {
    const res = await call("GET", `/users/${user.username}`, { token: viewer.token });
    if (res.status !== 200) throw new Error(`lookup failed: ${res.status} ${await res.text()}`);
    ids.push(...(await json(res)).devices.map((d: { deviceId: number }) => d.deviceId));
  }
  return ids;
}

/**
 * Creates a conversation of `creator` and `others`, with epoch 1 wrapped for every active device;
 * the others then accept it (they join as message requests), so everyone may post.
 */
export async function createConversation(creator: TestUser, ...others: TestUser[]): Promise<number> {
  const id = await createInvitation(creator, ...others);
  await Promise.all(others.map((u) => accept(u, id)));
  return id;
}

/** Creates a conversation as `createConversation` does, leaving the others' message requests pending. */
export async function createInvitation(creator: TestUser, ...others: TestUser[]): Promise<number> {
  const members = [creator, ...others];
  const devices = await activeDeviceIds(creator, ...members);
  const keys = await Promise.all(devices.map((id) => wrapFor(creator, id)));
  const participants = members.map((u) => u.username);
  const res = await call("POST", "/conversations", { token: creator.token, body: { participants, keys } });
  if (res.status !== 201) throw new Error(`create conversation failed: ${res.status} ${await res.text()}`);
  return (await json(res)).conversationId;
}

/** `user` accepts the conversation (a message request); asserts 200. */
export async function accept(user: TestUser, conversationId: number): Promise<void> {
  const res = await call("POST", `/conversations/${conversationId}/accept`, { token: user.token });
  if (res.status !== 200) throw new Error(`accept failed: ${res.status} ${await res.text()}`);
}

/** Every conversation of `user`, all pages of `GET /conversations`. */
export async function allConversations(user: TestUser): Promise<any[]> {
  const all: any[] = [];
  for (let cursor: string | null = ""; cursor !== null; ) {
    const res = await call("GET", `/conversations?limit=100${cursor ? `&cursor=${cursor}` : ""}`, {
      token: user.token,
    });
    if (res.status !== 200) throw new Error(`list failed: ${res.status} ${await res.text()}`);
    const page = await json(res);
    all.push(...page.conversations);
    cursor = page.nextCursor;
  }
  return all;
}

/** The device ids of `GET /conversations/{id}/devices`. */
export async function conversationDeviceIds(user: TestUser, conversationId: number): Promise<number[]> {
  const res = await call("GET", `/conversations/${conversationId}/devices`, { token: user.token });
  if (res.status !== 200) throw new Error(`devices failed: ${res.status} ${await res.text()}`);
  return (await json(res)).map((d: { deviceId: number }) => d.deviceId);
}

/** Commits the next epoch, wrapped for exactly the conversation's devices; returns the new epoch. */
export async function rotate(user: TestUser, conversationId: number): Promise<number> {
  const { epoch } = await getConversation(user, conversationId);
  const devices = await conversationDeviceIds(user, conversationId);
  const keys = await Promise.all(devices.map((id) => wrapFor(user, id)));
  const res = await call("POST", `/conversations/${conversationId}/epochs`, {
    token: user.token,
    body: { epoch: epoch + 1, keys },
  });
  if (res.status !== 201) throw new Error(`epoch commit failed: ${res.status} ${await res.text()}`);
  return epoch + 1;
}

/** The body of an add: the next epoch, wrapped for the current devices and the newcomer's. */
export async function addBody(adder: TestUser, conversationId: number, newcomer: { username: string }) {
  const { epoch } = await getConversation(adder, conversationId);
  const devices = [
    ...(await conversationDeviceIds(adder, conversationId)),
    ...(await activeDeviceIds(adder, newcomer)),
  ];
  const keys = await Promise.all(devices.map((id) => wrapFor(adder, id)));
  return { username: newcomer.username, epoch: epoch + 1, keys };
}

/**
 * Adds `newcomer` (an epoch commit); returns the response. A newcomer given with a token accepts
 * at once (they may join as a message request), so they may post.
 */
export async function addParticipant(
  adder: TestUser,
  conversationId: number,
  newcomer: { username: string; token?: string },
) {
  const res = await call("POST", `/conversations/${conversationId}/participants`, {
    token: adder.token,
    body: await addBody(adder, conversationId, newcomer),
  });
  if (res.status === 201 && newcomer.token) {
    await call("POST", `/conversations/${conversationId}/accept`, { token: newcomer.token });
  }
  return res;
}

/** Approves `pending` from `approver` (an active device of the same user) with keys for every conversation. */
export async function approveBody(approver: TestUser, pending: TestUser) {
  const conversations: { conversationId: number; epoch: number }[] = await allConversations(approver);
  const keys = await Promise.all(
    conversations.map(async (c) => ({
      conversationId: c.conversationId,
      epoch: c.epoch,
      ...(await wrapFor(approver, pending.deviceId)),
    })),
  );
  const mapped = keys.map(({ deviceId: _, ...k }) => k);
  return {
    signature: await signDevice(approver.account, pending.device),
    provisioning: b64(randomBytes(200)),
    keys: mapped,
  };
}

export async function approve(approver: TestUser, pending: TestUser) {
  return call("POST", `/devices/${pending.deviceId}/approve`, {
    token: approver.token,
    body: await approveBody(approver, pending),
  });
}

/** A message body under epoch 1 (pass `keyEpoch` after a rotation); the signature is random (clients verify it, not the server). */
export function messageBody(conversationId: number, extra: Record<string, unknown> = {}) {
  return {
    conversationId,
    keyEpoch: 1,
    nonce: b64(randomBytes(12)),
    ciphertext: b64(randomBytes(64)),
    authTag: b64(randomBytes(16)),
    signature: b64(randomBytes(64)),
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
