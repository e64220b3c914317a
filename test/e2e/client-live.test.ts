// The client library's live side and sessions against a real `wrangler dev`: subscriptions that
// catch up, reconnect with a fresh ticket, and stop for good with a reason (`removed`, `policy`,
// `session-ended` after a logout or a revocation); the key rotation after a removal that leaves the
// removed member unable to read what follows; access tokens renewed with the single-use refresh token.
import type { CloseInfo, FetchLike, ReceivedMessage, WebSocketLike } from "parley/client";
import { describe, expect, it } from "vitest";
import { api, sleep } from "./helpers.js";
import { account, linkDevice, trackSubscriptions, until } from "./library.js";

const track = trackSubscriptions();

describe("parley/client against wrangler dev: subscriptions", () => {
  it("subscribe: history first, then live messages from both sides, each once and in seq order", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    await bob.client.acceptConversation(conversationId);
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
    await sleep(200); // nothing more may arrive
    expect(got).toHaveLength(10);
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(got.every((m) => m.ok)).toBe(true);
    expect(new Set(got.map((m) => m.text))).toEqual(
      new Set(["before 1", "before 2", ...Array.from({ length: 8 }, (_, i) => `live ${i}`)]),
    );
    expect(sub.lastMessageId).toBe(got.at(-1)!.messageId);
    expect(states[0]).toBe("open");
  });

  it("reconnects after a dropped socket and catches up on what it missed, with a fresh ticket each time", async () => {
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

    sockets.at(-1)!.close(4000, "test drops the connection");
    await alice.client.sendMessage(conversationId, "two (while away)");
    await alice.client.sendMessage(conversationId, "three (while away)");
    await until(() => got.length === 3, "catch-up after reconnect");
    await alice.client.sendMessage(conversationId, "four");
    await until(() => got.length === 4, "live after reconnect");
    expect(got.map((m) => m.text)).toEqual(["one", "two (while away)", "three (while away)", "four"]);
    expect(sockets.length).toBeGreaterThanOrEqual(2);
    // Each connection used a single-use ticket, never the access token.
    const tickets = urls.map((u) => new URL(u).searchParams.get("ticket"));
    expect(tickets.every((t) => t !== null && t.length > 0)).toBe(true);
    expect(new Set(tickets).size).toBe(tickets.length);
    expect(urls.some((u) => new URL(u).searchParams.has("token"))).toBe(false);
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

  it("stops with `session-ended` (4001) after a logout, and after the device is revoked from another", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const { conversationId } = await alice.client.createConversation([bob.username]);

    const sub = track(bob.client.subscribe(conversationId, () => {}));
    await until(() => sub.state === "open", "bob's subscription");
    await bob.client.logout();
    expect(await sub.closed).toMatchObject({ cause: "session-ended", code: 4001 });
    expect(bob.ended.map((e) => e.reason)).toEqual(["logout"]);
    await expect(bob.client.me()).rejects.toMatchObject({ status: 401 });

    const laptop = await linkDevice(alice);
    const inbox = track(laptop.client.watchInbox(() => {}));
    const room = track(laptop.client.subscribe(conversationId, () => {}));
    await until(() => inbox.state === "open" && room.state === "open", "the laptop's sockets");
    await alice.client.revokeDevice(laptop.deviceId, alice.password);
    for (const s of [inbox, room]) expect(await s.closed).toMatchObject({ cause: "session-ended", code: 4001 });
    expect(laptop.ended.map((e) => e.reason)).toEqual(["session-ended"]);
    await expect(laptop.client.me()).rejects.toMatchObject({ status: 401 });
    expect((await alice.client.devices()).map((d) => d.deviceId)).toEqual([alice.deviceId]);
  });
});

describe("parley/client against wrangler dev: rotation and sessions", () => {
  it("rotates after a removal: the next send commits a new epoch the removed member cannot read", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const carol = await account("cl_carol");
    const { conversationId } = await alice.client.createConversation([bob.username, carol.username]);
    const before = await alice.client.sendMessage(conversationId, "all three of us");
    expect((await bob.client.messages(conversationId))[0]).toMatchObject({ ok: true, text: "all three of us" });

    await alice.client.removeParticipant(conversationId, bob.username);
    expect((await carol.client.getConversation(conversationId)).rotationNeeded).toBe(true);
    await carol.client.acceptConversation(conversationId);
    const after = await carol.client.sendMessage(conversationId, "bob is gone"); // 409, rotate, resend
    expect(after.keyEpoch).toBeGreaterThan(before.keyEpoch);
    const view = await alice.client.getConversation(conversationId);
    expect(view).toMatchObject({ epoch: after.keyEpoch, rotationNeeded: false });
    expect(view.participants.map((p) => p.username).sort()).toEqual([alice.username, carol.username].sort());

    // Alice reads it; Bob is refused by the server, and the ciphertext is useless to him anyway.
    expect((await alice.client.messages(conversationId))[0]).toMatchObject({ ok: true, text: "bob is gone" });
    await expect(bob.client.messages(conversationId)).rejects.toMatchObject({ status: 403 });
    const [raw] = await alice.client.rawMessages(conversationId, { limit: 1 });
    const attempt = await bob.client.decrypt(raw!);
    expect(attempt.ok).toBe(false);
  });

  it("renews an access token with the refresh token, and ends the session when a spent one is replayed", async () => {
    const refreshTokens: string[] = [];
    const recording: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      if (url.endsWith("/auth/refresh") || url.endsWith("/auth/login")) {
        const body = (await res.clone().json()) as { refreshToken?: string };
        if (body.refreshToken) refreshTokens.push(body.refreshToken);
      }
      return res;
    };
    const alice = await account("cl_alice", { fetch: recording });
    expect(refreshTokens).toHaveLength(1);
    // Pretend the access token expires within the renewal margin: the next call refreshes first.
    const session = (alice.client as unknown as { session: { record: { accessExpiresAt: number } } }).session;
    session.record.accessExpiresAt = Date.now() + 1_000;
    expect((await alice.client.me()).username).toBe(alice.username);
    expect(refreshTokens).toHaveLength(2);
    expect((await alice.client.me()).username).toBe(alice.username);
    expect(refreshTokens).toHaveLength(2);

    // Someone replays the spent refresh token: the server ends the whole session, the client's too.
    const replay = await api("POST", "/auth/refresh", { body: { refreshToken: refreshTokens[0] } });
    expect(replay.status).toBe(401);
    await expect(alice.client.me()).rejects.toMatchObject({ status: 401 });
    expect(alice.ended.map((e) => e.reason)).toEqual(["refresh-refused"]);
    // Logging in again on the same device works, with the password.
    expect(await alice.client.login(alice.username, alice.password)).toMatchObject({ deviceId: alice.deviceId });
    expect((await alice.client.me()).userId).toBe(alice.userId);
  });
});
