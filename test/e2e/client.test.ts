// The client library (`parley/client`) against a real `wrangler dev`: accounts and keys,
// conversations with wrapped keys, encrypted messages, idempotent retries, and live subscriptions
// that catch up, reconnect, and stop with a reason when refused or removed.
import { randomBytes } from "node:crypto";
import {
  type CloseInfo,
  type FetchLike,
  fingerprint,
  fromBase64,
  type IdentityKeys,
  ParleyClient,
  type ParleyClientOptions,
  ParleyError,
  type ReceivedMessage,
  type ServerFrame,
  type Subscription,
  toBase64,
  unwrapConversationKey,
  type WebSocketLike,
} from "parley/client";
import { afterEach, describe, expect, it } from "vitest";
import { baseUrl, sleep, uniqueName } from "./helpers.js";

interface Account {
  client: ParleyClient;
  username: string;
  password: string;
  userId: number;
  identity: IdentityKeys;
}

const subscriptions: Subscription[] = [];
afterEach(() => {
  for (const s of subscriptions.splice(0)) s.close();
});
const track = <T extends Subscription>(s: T): T => {
  subscriptions.push(s);
  return s;
};

async function account(prefix: string, options: Partial<ParleyClientOptions> = {}): Promise<Account> {
  const client = new ParleyClient({ baseUrl: baseUrl(), ...options });
  const username = uniqueName(prefix);
  const password = `pw-${randomBytes(9).toString("base64")}`;
  const { userId, identity } = await client.register(username, password);
  const session = await client.login(username, password, identity);
  expect(session).toMatchObject({ userId, username, identityMatches: true });
  return { client, username, password, userId, identity };
}

/** Resolves once `predicate` holds, polling (the library delivers through callbacks). */
async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("parley/client against wrangler dev", () => {
  it("registers with a fresh X25519 key, logs in, and looks keys up", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const key = await alice.client.publicKeyOf(bob.username);
    expect(key.byteLength).toBe(32);
    const me = await bob.client.me();
    expect(toBase64(key)).toBe(me.publicKey);
    expect(await fingerprint(key)).toMatch(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
    await expect(alice.client.lookupUser(uniqueName("nobody"))).rejects.toMatchObject({
      status: 404,
      code: "not_found",
    });
    // A wrong password is the API's 401, surfaced as a ParleyError.
    const stranger = new ParleyClient({ baseUrl: baseUrl() });
    await expect(stranger.login(alice.username, "wrong password!")).rejects.toBeInstanceOf(ParleyError);
  });

  it("creates a conversation whose key each participant unwraps with their own key only", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const carol = await account("cl_carol");
    const conversation = await alice.client.createConversation([bob.username], { title: "plans" });
    expect(conversation.participants.map((p) => p.username).sort()).toEqual([alice.username, bob.username].sort());
    expect(fromBase64(conversation.encryptedKey).byteLength).toBe(93);

    const bobsView = await bob.client.getConversation(conversation.conversationId);
    expect(bobsView.encryptedKey).not.toBe(conversation.encryptedKey);
    const sent = await alice.client.sendMessage(conversation.conversationId, "meet at noon");
    const [received] = await bob.client.messages(conversation.conversationId);
    expect(received).toMatchObject({
      ok: true,
      text: "meet at noon",
      messageId: sent.messageId,
      senderUsername: alice.username,
    });

    // Carol is not in it: the server refuses, and Bob's wrapped key is useless to her anyway.
    await expect(carol.client.getConversation(conversation.conversationId)).rejects.toMatchObject({ status: 403 });
    await expect(unwrapConversationKey(fromBase64(bobsView.encryptedKey), carol.identity)).rejects.toThrow(
      /cannot unwrap/,
    );
    expect(await unwrapConversationKey(fromBase64(bobsView.encryptedKey), bob.identity)).toBeDefined();
  });

  it("stores only ciphertext: the server's copy never contains the plaintext", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    const secret = `the eagle lands at ${randomBytes(6).toString("hex")}`;
    await alice.client.sendMessage(conversationId, secret);
    const [raw] = await bob.client.rawMessages(conversationId);
    expect(raw).toBeDefined();
    const stored = Buffer.concat([fromBase64(raw!.nonce), fromBase64(raw!.ciphertext), fromBase64(raw!.authTag)]);
    expect(stored.includes(Buffer.from(secret))).toBe(false);
    expect(fromBase64(raw!.nonce).byteLength).toBe(12);
    expect(fromBase64(raw!.authTag).byteLength).toBe(16);
    expect(Buffer.from(fromBase64(raw!.associatedData!)).toString()).toBe(
      `parley/message/v1;conversation=${conversationId};sender=${alice.userId}`,
    );
  });

  it("retries a send whose answer was lost without storing it twice", async () => {
    let dropped = 0;
    // The first POST /messages reaches the server and commits, but its answer is "lost".
    const lossy: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      if (init?.method === "POST" && url.endsWith("/messages") && dropped === 0) {
        dropped++;
        await res.arrayBuffer();
        throw new TypeError("fetch failed (simulated lost answer)");
      }
      return res;
    };
    const alice = await account("cl_alice", { fetch: lossy, retry: { baseDelayMs: 10 } });
    const bob = await account("cl_bob");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    const sent = await alice.client.sendMessage(conversationId, "exactly once");
    expect(dropped).toBe(1);
    const history = await bob.client.messages(conversationId);
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({
      messageId: sent.messageId,
      clientMessageId: sent.clientMessageId,
      text: "exactly once",
    });
    // An explicit repeat with the same clientMessageId is the same message too.
    const again = await alice.client.sendMessage(conversationId, "exactly once", {
      clientMessageId: sent.clientMessageId,
    });
    expect(again.messageId).toBe(sent.messageId);
  });

  it("subscribe: history first, then live messages from both sides, each once and in seq order", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    await alice.client.sendMessage(conversationId, "before 1");
    await alice.client.sendMessage(conversationId, "before 2");

    const got: ReceivedMessage[] = [];
    const states: string[] = [];
    const sub = track(
      bob.client.subscribe(conversationId, (m) => void got.push(m), { onStateChange: (s) => states.push(s) }),
    );
    await until(() => got.length === 2 && sub.state === "open", "history");
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? alice : bob).client.sendMessage(conversationId, `live ${i}`)),
    );
    await until(() => got.length === 10, "live messages");
    await sleep(200);
    expect(got).toHaveLength(10);
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(got.every((m) => m.ok)).toBe(true);
    expect(new Set(got.map((m) => m.text))).toEqual(
      new Set(["before 1", "before 2", ...Array.from({ length: 8 }, (_, i) => `live ${i}`)]),
    );
    expect(sub.lastMessageId).toBe(got.at(-1)!.messageId);
    expect(states[0]).toBe("open");
  });

  it("reconnects after a dropped socket and catches up on what it missed", async () => {
    const alice = await account("cl_alice");
    const sockets: WebSocketLike[] = [];
    const urls: string[] = [];
    const bob = await account("cl_bob", {
      webSocket: (url) => {
        const ws = new WebSocket(url) as unknown as WebSocketLike;
        sockets.push(ws);
        urls.push(url);
        return ws;
      },
    });

    const { conversationId } = await alice.client.createConversation([bob.username]);
    const got: ReceivedMessage[] = [];
    const states: string[] = [];
    track(
      bob.client.subscribe(conversationId, (m) => void got.push(m), {
        reconnect: { initialDelayMs: 300 },
        onStateChange: (s) => states.push(s),
      }),
    );
    await until(() => states.includes("open"), "first connection");
    await alice.client.sendMessage(conversationId, "one");
    await until(() => got.length === 1, "first message");

    sockets.at(-1)!.close(4001, "test drops the connection");
    await alice.client.sendMessage(conversationId, "two (while away)");
    await alice.client.sendMessage(conversationId, "three (while away)");
    await until(() => got.length === 3, "catch-up after reconnect");
    await alice.client.sendMessage(conversationId, "four");
    await until(() => got.length === 4, "live after reconnect");
    expect(got.map((m) => m.text)).toEqual(["one", "two (while away)", "three (while away)", "four"]);
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    // Each connection asked the client for a token (the same one while it is valid), never logged.
    expect(urls.every((u) => /[?&]token=[^&]+/.test(u))).toBe(true);
    expect(states).toContain("reconnecting");
  });

  it("stops with `removed` (4003) when removed, and with `policy` (1008) when not a participant", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const carol = await account("cl_carol");
    const { conversationId } = await alice.client.createConversation([bob.username]);

    const closes: CloseInfo[] = [];
    const sub = track(bob.client.subscribe(conversationId, () => {}, { onClose: (i) => closes.push(i) }));
    await until(() => sub.state === "open", "bob's subscription");
    await alice.client.removeParticipant(conversationId, bob.username);
    await until(() => closes.length === 1, "bob's removal");
    expect(closes[0]).toMatchObject({ cause: "removed", code: 4003 });
    expect(sub.state).toBe("closed");

    const refused: CloseInfo[] = [];
    const carolSub = track(carol.client.subscribe(conversationId, () => {}, { onClose: (i) => refused.push(i) }));
    const info = await carolSub.closed;
    expect(info).toMatchObject({ cause: "policy", code: 1008 });
    expect(info.message).toMatch(/refused/);
    expect(refused).toHaveLength(1);
  });

  it("adds a participant who can then read the history, and the inbox announces it", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const dave = await account("cl_dave");
    const frames: ServerFrame[] = [];
    const inbox = track(dave.client.watchInbox((f) => void frames.push(f)));
    await until(() => inbox.state === "open", "dave's inbox");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    await bob.client.sendMessage(conversationId, "hi all");
    await alice.client.addParticipant(conversationId, dave.username);
    await until(
      () => frames.some((f) => f.type === "conversationCreated" && f.data.conversationId === conversationId),
      "conversationCreated",
    );
    const [first] = await dave.client.messages(conversationId);
    expect(first).toMatchObject({ ok: true, text: "hi all", senderUsername: bob.username });
  });

  it("renews a session about to expire by logging in again", async () => {
    let logins = 0;
    const counting: FetchLike = (url, init) => {
      if (url.endsWith("/auth/login")) logins++;
      return fetch(url, init);
    };
    const alice = await account("cl_alice", { fetch: counting });
    expect(logins).toBe(1);
    // Pretend the cached token expires within the renewal margin: the next call logs in first.
    (alice.client as unknown as { token: { expiresAt: number } }).token.expiresAt = Date.now() + 1_000;
    expect((await alice.client.me()).username).toBe(alice.username);
    expect(logins).toBe(2);
    expect((await alice.client.me()).username).toBe(alice.username);
    expect(logins).toBe(2);
    // Without the password kept, an expired session is an error that says to log in again.
    const forgetful = new ParleyClient({ baseUrl: baseUrl() });
    await forgetful.login(alice.username, alice.password, alice.identity, { keepPassword: false });
    (forgetful as unknown as { token: { expiresAt: number } }).token.expiresAt = Date.now() - 1;
    await expect(forgetful.me()).rejects.toThrow(/log in again/);
  });
});
