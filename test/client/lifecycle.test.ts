// The library's whole lifecycle against FakeParley (an in-process contract v2 server): register,
// link a second device with the comparison code, sessions and refresh tokens, key epochs and the
// rotation on 409, identity pinning, a malicious server's tampering, and a reload from the store.
import { describe, expect, it } from "vitest";
import {
  IdentityChangedError,
  type IdentityChangedEvent,
  MemoryStore,
  ParleyClient,
  type ParleyClientOptions,
  type SessionEnded,
  SignatureError,
  toBase64,
  type WebSocketLike,
} from "../../client/index.ts";
import { FakeParley } from "./fake-server.ts";

function world() {
  const server = new FakeParley();
  const make = (extra: Partial<ParleyClientOptions> = {}) =>
    new ParleyClient({ baseUrl: "http://parley.test", fetch: server.fetch, retry: { baseDelayMs: 1 }, ...extra });
  return { server, make };
}

/** Every string reachable from `root` (own properties, maps, arrays), CryptoKeys excluded. */
function strings(root: unknown): string[] {
  const seen = new Set<unknown>();
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === "string") return void out.push(v);
    if (v === null || typeof v !== "object" || seen.has(v) || v instanceof CryptoKey) return;
    seen.add(v);
    if (v instanceof Map) for (const entry of v) walk(entry);
    for (const key of Object.getOwnPropertyNames(v)) walk((v as Record<string, unknown>)[key]);
  };
  walk(root);
  return out;
}

describe("device linking", () => {
  it("logs a second device in as pending, shows the same code on both screens, approves and provisions it", async () => {
    const { server, make } = world();
    const phone = make();
    await phone.register("alice", "correct horse");
    const bob = make();
    await bob.register("bob", "battery staple");
    const conversation = await phone.createConversation(["bob"]);
    await phone.sendMessage(conversation.conversationId, "before the laptop");

    const laptop = make();
    const status = await laptop.login("alice", "correct horse", { deviceName: "laptop" });
    expect(status.status).toBe("pending");
    expect(status.comparisonCode).toMatch(/^\d{4} \d{4} \d{4}$/);
    await expect(laptop.messages(conversation.conversationId)).rejects.toMatchObject({ status: 403 });

    const [pending] = await phone.pendingDevices();
    expect(pending!.deviceId).toBe(status.deviceId);
    expect(pending!.comparisonCode).toBe(status.comparisonCode);
    await expect(phone.approveDevice(status.deviceId, { comparisonCode: "0000 0000 0000" })).rejects.toThrow(/differ/);
    const waiting = laptop.waitForApproval({ pollIntervalMs: 5 });
    await phone.approveDevice(status.deviceId, { comparisonCode: status.comparisonCode! });
    expect((await waiting).status).toBe("active");

    const history = await laptop.messages(conversation.conversationId);
    expect(history.map((m) => m.ok && m.text)).toEqual(["before the laptop"]);
    await laptop.sendMessage(conversation.conversationId, "from the laptop");
    const seen = await bob.messages(conversation.conversationId, { limit: 10 });
    expect(seen.map((m) => m.ok && m.text)).toEqual(["from the laptop", "before the laptop"]);
    // The approval carried a signature the server checked, and the provisioning envelope (opaque, small).
    const approve = server.log.find((r) => r.path.endsWith("/approve"))!;
    expect(atob(approve.body.provisioning).length).toBeLessThanOrEqual(4096);
  });

  it("gives a different code when the server swaps the new device's keys, and refuses the swapped device", async () => {
    const { server, make } = world();
    const phone = make();
    await phone.register("alice", "correct horse");
    const laptop = make();
    const status = await laptop.login("alice", "correct horse");
    // The server shows the approving device an attacker's keys instead of the laptop's.
    const attacker = make();
    const fake = await attacker.register("mallory", "mallory's password");
    const evil = server.devices.get(fake.deviceId)!;
    server.tamper = (method, path, body) => {
      if (method === "GET" && path === "/devices") {
        for (const d of body)
          if (d.deviceId === status.deviceId)
            Object.assign(d, { identityKey: evil.identityKey, signingKey: evil.signingKey });
        return body;
      }
    };
    const [pending] = await phone.pendingDevices();
    expect(pending!.comparisonCode).not.toBe(status.comparisonCode);
    await expect(phone.approveDevice(status.deviceId, { comparisonCode: status.comparisonCode! })).rejects.toThrow(
      /differ/,
    );
  });
});

describe("sessions", () => {
  it("never keeps the password, refreshes with single-use rotating refresh tokens, and ends on a refused refresh", async () => {
    const { server, make } = world();
    let now = Date.now();
    server.now = () => now;
    const store = new MemoryStore();
    const ended: SessionEnded[] = [];
    const alice = make({ store, now: () => now, onSessionEnded: (e) => ended.push(e) });
    const password = "a very particular password";
    await alice.register("alice", password);
    expect(strings(alice)).not.toContain(password);
    expect(strings(store.values())).not.toContain(password);

    await alice.me();
    expect(server.log.filter((r) => r.path === "/auth/refresh")).toHaveLength(0);
    now += 15 * 60_000 - 30_000; // 30 s left: under the 60 s margin
    await alice.me();
    now += 15 * 60_000 - 30_000;
    await alice.me();
    const refreshes = server.log.filter((r) => r.path === "/auth/refresh").map((r) => r.body.refreshToken);
    expect(refreshes).toHaveLength(2);
    expect(refreshes[0]).not.toBe(refreshes[1]); // rotated
    expect(server.log.filter((r) => r.path === "/auth/login")).toHaveLength(1); // never logs in again
    expect(strings(alice)).not.toContain(password);

    // The session is ended elsewhere: the next refresh is refused, the app is told, calls stop.
    for (const s of server.sessions.values()) s.ended = true;
    now += 15 * 60_000;
    await expect(alice.me()).rejects.toMatchObject({ status: 401 });
    expect(ended).toEqual([expect.objectContaining({ reason: "refresh-refused" })]);
    await expect(alice.me()).rejects.toMatchObject({ status: 401 });
    expect(server.log.filter((r) => r.path === "/auth/refresh")).toHaveLength(3);
    expect(await store.keys("alice/session")).toEqual([]);
  });

  it("survives a reload: session, device keys and epoch keys come back from the store", async () => {
    const { make } = world();
    const store = new MemoryStore();
    const alice = make({ store });
    await alice.register("alice", "correct horse");
    const bob = make();
    await bob.register("bob", "battery staple");
    const { conversationId } = await alice.createConversation(["bob"]);
    await bob.acceptConversation(conversationId);
    await bob.sendMessage(conversationId, "hi alice");

    const reloaded = make({ store });
    expect(await reloaded.resume()).toMatchObject({ username: "alice", status: "active" });
    expect((await reloaded.messages(conversationId)).map((m) => m.ok && m.text)).toEqual(["hi alice"]);
    await reloaded.sendMessage(conversationId, "back again");
    // Private device keys in the store are non-extractable CryptoKeys.
    const device = (await store.get<any>("alice/device"))!;
    expect(device.keys.identity.privateKey.extractable).toBe(false);
    expect(device.keys.signing.privateKey.extractable).toBe(false);
  });
});

describe("key epochs", () => {
  it("rotates on 409 `rotation required`, resends with the same clientMessageId, and keeps old epochs readable", async () => {
    const { server, make } = world();
    const [alice, bob, carol] = [make(), make(), make()];
    await alice.register("alice", "correct horse");
    await bob.register("bob", "battery staple");
    await carol.register("carol", "carol's password");
    const { conversationId } = await alice.createConversation(["bob", "carol"]);
    await alice.sendMessage(conversationId, "epoch one");
    // Carol leaves (through another client): alice's view is stale, so her next send meets the 409.
    const row = server.conversations.get(conversationId)!;
    const carolId = [...server.users.values()].find((u) => u.username === "carol")!.userId;
    row.participants = row.participants.filter((p) => p.userId !== carolId);
    row.rotationNeeded = true;
    await alice.sendMessage(conversationId, "after carol left");

    const posts = server.log.filter((r) => r.path === "/messages").slice(1);
    expect(posts.map((p) => p.body.keyEpoch)).toEqual([2, 3]);
    expect(new Set(posts.map((p) => p.body.clientMessageId)).size).toBe(1);
    const commit = server.log.findLast((r) => r.path.endsWith("/epochs"))!;
    expect(commit.body.epoch).toBe(3);
    const carolDevice = server.activeDevices(carolId)[0]!;
    const bobId = [...server.users.values()].find((u) => u.username === "bob")!.userId;
    expect(commit.body.keys.map((k: { deviceId: number }) => k.deviceId).sort()).toEqual(
      [...server.activeDevices(row.participants[0]!.userId), ...server.activeDevices(bobId)]
        .map((d) => d.deviceId)
        .sort(),
    );
    expect(commit.body.keys.map((k: { deviceId: number }) => k.deviceId)).not.toContain(carolDevice.deviceId);
    await bob.acceptConversation(conversationId);
    await bob.sendMessage(conversationId, "bob was here");

    const read = await alice.messages(conversationId, { limit: 10 });
    expect(read.map((m) => [m.keyEpoch, m.ok && m.text])).toEqual([
      [3, "bob was here"],
      [3, "after carol left"],
      [2, "epoch one"],
    ]);
    // Bob holds both epochs' keys and reads everything too.
    expect((await bob.messages(conversationId, { limit: 10 })).every((m) => m.ok)).toBe(true);
  });

  it("uses the winner's key when two devices race to rotate", async () => {
    const { server, make } = world();
    const [alice, bob] = [make(), make()];
    await alice.register("alice", "correct horse");
    await bob.register("bob", "battery staple");
    const { conversationId } = await alice.createConversation(["bob"]);
    await bob.acceptConversation(conversationId);
    await bob.sendMessage(conversationId, "bound"); // epoch 2, committed by alice at creation
    server.conversations.get(conversationId)!.rotationNeeded = true;
    let raced = false;
    server.before = async (method, path) => {
      if (method === "POST" && path.endsWith("/epochs") && !raced) {
        raced = true;
        await bob.rotateKey(conversationId); // bob commits epoch 3 first
      }
      return undefined;
    };
    const sent = await alice.sendMessage(conversationId, "after the race");
    expect(sent.keyEpoch).toBe(3);
    expect((await bob.messages(conversationId, { limit: 1 }))[0]).toMatchObject({ ok: true, text: "after the race" });
  });

  it("adds a participant with a new epoch: the newcomer reads what follows, not what came before", async () => {
    const { make } = world();
    const [alice, bob, dave] = [make(), make(), make()];
    await alice.register("alice", "correct horse");
    await bob.register("bob", "battery staple");
    await dave.register("dave", "dave's password");
    const { conversationId } = await alice.createConversation(["bob"]);
    await alice.sendMessage(conversationId, "before dave");
    await alice.addParticipant(conversationId, "dave");
    await alice.sendMessage(conversationId, "welcome dave");
    const forDave = await dave.messages(conversationId, { limit: 10 });
    expect(forDave.map((m) => m.ok && m.text)).toEqual(["welcome dave", false]);
  });
});

describe("identity pinning", () => {
  it("pins on first use, warns on a changed account key, and refuses it until trusted", async () => {
    const { make } = world();
    const events: IdentityChangedEvent[] = [];
    const alice = make({ onIdentityChanged: (e) => events.push(e) });
    await alice.register("alice", "correct horse");
    const bob = make();
    await bob.register("bob", "battery staple");
    const first = await alice.lookupUser("bob");
    const { conversationId } = await alice.createConversation(["bob"]);

    const bob2 = make();
    await bob2.resetIdentity("bob", "battery staple");
    await expect(alice.lookupUser("bob")).rejects.toBeInstanceOf(IdentityChangedError);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ userId: first.userId, username: "bob" });
    expect(toBase64(events[0]!.previous)).toBe(first.accountKey);
    expect(toBase64(events[0]!.current!)).not.toBe(first.accountKey);
    // Nothing is wrapped for the new key: not a rotation, not a new conversation.
    await expect(alice.sendMessage(conversationId, "to the new bob?")).rejects.toBeInstanceOf(IdentityChangedError);
    await expect(alice.createConversation(["bob"])).rejects.toBeInstanceOf(IdentityChangedError);
    await expect(alice.lookupUser("bob")).rejects.toBeInstanceOf(IdentityChangedError);
    expect(events).toHaveLength(1); // one warning per new key

    await alice.trustIdentity(first.userId);
    await alice.sendMessage(conversationId, "hello new bob");
    expect((await bob2.messages(conversationId, { limit: 1 }))[0]).toMatchObject({ ok: true, text: "hello new bob" });
  });

  it("raises the warning on an `identityChanged` frame and blocks until trusted", async () => {
    const { server, make } = world();
    const events: IdentityChangedEvent[] = [];
    const sockets: FakeWs[] = [];
    const alice = make({
      onIdentityChanged: (e) => events.push(e),
      webSocket: (url) => {
        const ws = new FakeWs(url);
        sockets.push(ws);
        return ws;
      },
    });
    await alice.register("alice", "correct horse");
    const bob = make();
    const { userId } = await bob.register("bob", "battery staple");
    await alice.lookupUser("bob");
    const frames: string[] = [];
    const inbox = alice.watchInbox((f) => void frames.push(f.type));
    await waitFor(() => sockets.length === 1);
    const ws = sockets[0]!;
    expect(ws.url).toMatch(/[?&]ticket=/);
    expect(ws.url).not.toMatch(/token=/);
    expect(server.tickets).toHaveLength(1);
    ws.open();
    ws.receive(JSON.stringify({ type: "identityChanged", data: { userId, username: "bob" } }));
    await waitFor(() => frames.length === 1);
    expect(events).toEqual([expect.objectContaining({ userId, username: "bob" })]);
    await expect(alice.createConversation(["bob"])).rejects.toBeInstanceOf(IdentityChangedError);
    await alice.trustIdentity(userId);
    await alice.createConversation(["bob"]);
    inbox.close();
  });

  it("stops a socket closed with 4001 as `session-ended` and reports the session's end", async () => {
    const { make } = world();
    const sockets: FakeWs[] = [];
    const ended: SessionEnded[] = [];
    const alice = make({
      onSessionEnded: (e) => ended.push(e),
      webSocket: (url) => {
        const ws = new FakeWs(url);
        sockets.push(ws);
        return ws;
      },
    });
    await alice.register("alice", "correct horse");
    const inbox = alice.watchInbox(() => {});
    await waitFor(() => sockets.length === 1);
    sockets[0]!.open();
    sockets[0]!.serverClose(4001, "session ended");
    expect((await inbox.closed).cause).toBe("session-ended");
    expect(ended).toEqual([expect.objectContaining({ reason: "session-ended" })]);
    await expect(alice.me()).rejects.toMatchObject({ status: 401 });
  });
});

describe("a malicious server", () => {
  it("cannot slip in a device whose signature does not verify", async () => {
    const { server, make } = world();
    const alice = make();
    await alice.register("alice", "correct horse");
    const bob = make();
    await bob.register("bob", "battery staple");
    const mallory = make();
    const m = await mallory.register("mallory", "mallory's password");
    const evil = server.devices.get(m.deviceId)!;
    server.tamper = (method, path, body) => {
      if (method === "GET" && path === "/users/bob") {
        body.devices.push({ ...server.publicDevice(evil), userId: body.userId });
        return body;
      }
    };
    await expect(alice.createConversation(["bob"])).rejects.toBeInstanceOf(SignatureError);
    expect(server.log.filter((r) => r.method === "POST" && r.path === "/conversations")).toHaveLength(0);
  });

  it("cannot pass off a wrap with a broken signature, or a message moved to another conversation or device", async () => {
    const { server, make } = world();
    const errors: unknown[] = [];
    const alice = make();
    await alice.register("alice", "correct horse");
    const bob = make({ onError: (e) => errors.push(e) });
    await bob.register("bob", "battery staple");
    const one = await alice.createConversation(["bob"]);
    const two = await alice.createConversation(["bob"]);
    await alice.sendMessage(one.conversationId, "for conversation one");
    await alice.sendMessage(two.conversationId, "for conversation two");

    // The wrap's signature is spoiled: bob keeps no key, reports why, and reads nothing.
    server.tamper = (method, path, body) => {
      if (method === "GET" && path === `/conversations/${one.conversationId}/keys`) {
        for (const k of body) k.signature = toBase64(new Uint8Array(64));
        return body;
      }
    };
    const [spoiled] = await bob.messages(one.conversationId);
    expect(spoiled).toMatchObject({ ok: false });
    expect(errors.some((e) => e instanceof SignatureError)).toBe(true);

    // Conversation two's message, served as conversation two's but claiming another device of the sender.
    server.tamper = undefined;
    const c2 = server.conversations.get(two.conversationId)!;
    const original = structuredClone(c2.messages[0]!);
    expect((await bob.messages(two.conversationId))[0]).toMatchObject({ ok: true });
    c2.messages[0] = { ...original, senderDeviceId: original.senderDeviceId + 1000 };
    expect((await bob.messages(two.conversationId))[0]).toMatchObject({ ok: false });
    // Moved into conversation one (whose key bob does not hold) and, separately, relabelled epoch 1.
    c2.messages[0] = { ...original, keyEpoch: 1 };
    expect((await bob.messages(two.conversationId))[0]).toMatchObject({ ok: false });
    const moved = { ...original, conversationId: one.conversationId };
    expect(await bob.decrypt(moved)).toMatchObject({ ok: false });
  });
});

// ---- a minimal scripted socket ----

class FakeWs implements WebSocketLike {
  readyState = 0;
  private readonly listeners = new Map<string, ((e: never) => void)[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, l: (e: never) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), l]);
  }
  private emit(type: string, event: unknown): void {
    for (const l of this.listeners.get(type) ?? []) (l as (e: unknown) => void)(event);
  }
  send(data: string): void {
    if (data === "ping") queueMicrotask(() => this.receive("pong"));
  }
  close(code = 1000, reason = ""): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.emit("close", { code, reason }));
  }
  open(): void {
    this.readyState = 1;
    this.emit("open", {});
  }
  receive(text: string): void {
    this.emit("message", { data: text });
  }
  serverClose(code: number, reason: string): void {
    this.readyState = 3;
    this.emit("close", { code, reason });
  }
}

async function waitFor(predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
