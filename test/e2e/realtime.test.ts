import { describe, expect, it } from "vitest";
import {
  api,
  connectSocket,
  conversationSocketUrl,
  createConversation,
  getMessages,
  newMessages,
  newUser,
  newUsers,
  type PostedMessage,
  postMessage,
  randomB64,
  rotate,
  sleep,
  type TestUser,
  waitForMessages,
  wsUrl,
} from "./helpers.js";
import { expectMatchesPosted, run, trackSockets } from "./sockets.js";

const { track, open } = trackSockets();

describe("conversation socket: delivery", () => {
  it("delivers each message posted over REST to every participant's socket, the sender's own included", async () => {
    const [alice, bob] = (await newUsers(2, "deliv")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const aliceWs = await open(conversationSocketUrl(alice, conv.conversationId));
    const bobWs = await open(conversationSocketUrl(bob, conv.conversationId));

    const posted: PostedMessage[] = [];
    for (const sender of [alice, bob, alice, bob]) posted.push(await postMessage(sender, conv.conversationId));
    expect(posted.map((p) => p.seq)).toEqual([1, 2, 3, 4]);

    for (const ws of [aliceWs, bobWs]) {
      const received = await waitForMessages(ws, 4);
      expect(received.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
      received.forEach((m, i) => {
        expectMatchesPosted(m, posted[i]!);
      });
    }
    // The frame's data is the same MessageResponse that the history route returns.
    const history = await getMessages(bob, conv.conversationId, { limit: 10 }); // newest first
    expect(newMessages(aliceWs.frames)).toEqual(history.reverse());
    // Nothing but the four events arrived.
    await sleep(200);
    expect(aliceWs.frames).toHaveLength(4);
    expect(bobWs.frames).toHaveLength(4);
  });

  it("delivers only the conversation's own messages to its socket", async () => {
    const [alice, bob] = (await newUsers(2, "sep")) as [TestUser, TestUser];
    const one = await createConversation(alice, [bob]);
    const two = await createConversation(alice, [bob]);
    const ws = await open(conversationSocketUrl(bob, one.conversationId));
    await postMessage(alice, two.conversationId);
    const inOne = await postMessage(alice, one.conversationId);
    const [received] = await waitForMessages(ws, 1);
    expectMatchesPosted(received!, inOne);
    await sleep(200);
    expect(ws.frames).toHaveLength(1);
  });
});

describe("conversation socket: admission", () => {
  it("completes the handshake, then closes with 1008 for a user who is not a participant", async () => {
    const [alice, bob, mallory] = (await newUsers(3, "adm")) as [TestUser, TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const outsider = track(connectSocket(conversationSocketUrl(mallory, conv.conversationId)));
    await outsider.opened; // browsers cannot read a refused handshake's status, so it completes
    const closed = await outsider.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).not.toBe("");
    expect(outsider.frames).toEqual([]);
  });

  it("closes with 1008 for a conversation that does not exist, exactly as for one the user is not in", async () => {
    const alice = await newUser("adm");
    for (const conversationId of ["999999999", "0", "abc", "-1"]) {
      const ws = track(connectSocket(wsUrl({ conversationId, token: alice.token })));
      expect((await ws.closed).code, `conversationId=${conversationId}`).toBe(1008);
    }
  });

  it("closes with 1008 for a garbage, missing or empty token", async () => {
    const [alice, bob] = (await newUsers(2, "adm")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const urls = [
      wsUrl({ conversationId: conv.conversationId, token: "garbage" }),
      wsUrl({ conversationId: conv.conversationId, token: `${alice.token.slice(0, -4)}AAAA` }),
      wsUrl({ conversationId: conv.conversationId, token: "" }),
      wsUrl({ conversationId: conv.conversationId }),
    ];
    for (const url of urls) {
      const ws = track(connectSocket(url));
      const closed = await ws.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).not.toBe("");
      expect(closed.reason).not.toContain(alice.token);
    }
  });

  it("answers 426 in the error shape to a request without Upgrade: websocket", async () => {
    const [alice, bob] = (await newUsers(2, "adm")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    for (const path of [
      `/ws?conversationId=${conv.conversationId}&token=${alice.token}`,
      `/ws?token=${alice.token}`,
      "/ws",
    ]) {
      const res = await api<{ error: { code: string; message: string } }>("GET", path);
      expect(res.status).toBe(426);
      expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
      expect(res.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
      expect(res.body.error.message).not.toBe("");
    }
  });
});

describe("conversation socket: client frames", () => {
  it("answers ping with pong, and anything else with a bad_request error frame, keeping the socket open", async () => {
    const [alice, bob] = (await newUsers(2, "ping")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const ws = await open(conversationSocketUrl(alice, conv.conversationId));

    ws.send("ping");
    await ws.waitFor((_, texts) => texts.includes("pong"));

    for (const garbage of ["hello", '{"type":"subscribe"}', "PING"]) {
      const errorsBefore = ws.frames.filter((f) => f.type === "error").length;
      ws.send(garbage);
      const error = await ws.waitFor((frames) => frames.filter((f) => f.type === "error")[errorsBefore]);
      expect(error).toEqual({ type: "error", error: { code: "bad_request", message: expect.any(String) } });
    }
    ws.ws.send(new Uint8Array([1, 2, 3])); // a binary frame is not a command either
    await ws.waitFor((frames) => frames.filter((f) => f.type === "error").length === 4);

    // Still open and still working: ping, and a message posted now.
    ws.send("ping");
    await ws.waitFor((_, texts) => texts.filter((t) => t === "pong").length === 2);
    const posted = await postMessage(bob, conv.conversationId);
    const [received] = await waitForMessages(ws, 1);
    expectMatchesPosted(received!, posted);
    expect(ws.isClosed()).toBe(false);
  });
});

describe("conversation socket: reconnecting", () => {
  it("loses nothing across a disconnect: reopen first, then fetch `after`, then drop duplicates by messageId", async () => {
    const [alice, bob] = (await newUsers(2, "recon")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const posted: PostedMessage[] = [];
    const post = async (sender: TestUser) => {
      const p = await postMessage(sender, conv.conversationId);
      posted.push(p);
      return p;
    };

    // Connected: bob holds what arrived.
    let bobWs = await open(conversationSocketUrl(bob, conv.conversationId));
    for (const sender of [alice, bob, alice]) await post(sender);
    const held = new Map((await waitForMessages(bobWs, 3)).map((m) => [m.messageId, m]));
    await bobWs.close();

    // Disconnected: the conversation goes on.
    for (const sender of [alice, alice, bob, alice]) await post(sender);

    // The recipe: the socket first, then history `after` the last held message, while more arrive.
    const lastHeld = Math.max(...held.keys());
    bobWs = await open(conversationSocketUrl(bob, conv.conversationId));
    const during = [post(alice), post(bob), post(alice)];
    const fetched = await getMessages(bob, conv.conversationId, { after: lastHeld });
    await Promise.all(during);
    expect(fetched.map((m) => m.seq)).toEqual([...fetched.map((m) => m.seq)].sort((a, b) => a - b)); // oldest first
    expect(fetched.every((m) => m.messageId > lastHeld)).toBe(true);

    // Everything posted is now either held, fetched, or on the new socket; wait until it is all there.
    const total = posted.length;
    const merged = await bobWs.waitFor(() => {
      const all = new Map(held);
      for (const m of fetched) all.set(m.messageId, m);
      for (const m of newMessages(bobWs.frames)) all.set(m.messageId, m);
      return all.size >= total ? all : undefined;
    });
    const ordered = [...merged.values()].sort((a, b) => a.seq - b.seq);
    expect(ordered.map((m) => m.seq)).toEqual(run(1, total));
    const postedById = new Map(posted.map((p) => [p.messageId, p]));
    for (const m of ordered) expectMatchesPosted(m, postedById.get(m.messageId)!);
    // The new socket itself never goes backwards or repeats.
    const liveSeqs = newMessages(bobWs.frames).map((m) => m.seq);
    expect(liveSeqs).toEqual(run(liveSeqs[0] ?? 1, liveSeqs.length));
  });
});

describe("conversation socket: ordering under concurrency", () => {
  it("gives every socket strictly ascending seq with no gap or repeat when many senders post at once", async () => {
    const [alice, bob, carol] = (await newUsers(3, "conc")) as [TestUser, TestUser, TestUser];
    const conv = await createConversation(alice, [bob, carol]);
    const watchers = [
      await open(conversationSocketUrl(alice, conv.conversationId)),
      await open(conversationSocketUrl(bob, conv.conversationId)),
      await open(conversationSocketUrl(carol, conv.conversationId)),
      await open(conversationSocketUrl(carol, conv.conversationId)), // a second device
    ];
    const N = 20;
    const posted = await Promise.all(
      Array.from({ length: N }, (_, i) => postMessage(i % 2 ? bob : alice, conv.conversationId)),
    );
    // The database gave out 1..N, each once.
    expect(posted.map((p) => p.seq).sort((a, b) => a - b)).toEqual(run(1, N));

    const bySeq = new Map(posted.map((p) => [p.seq, p]));
    for (const ws of watchers) {
      const received = await waitForMessages(ws, N, undefined, 15_000);
      expect(received.map((m) => m.seq)).toEqual(run(1, N));
      for (const m of received) expectMatchesPosted(m, bySeq.get(m.seq)!);
    }
    await sleep(300);
    for (const ws of watchers) expect(newMessages(ws.frames)).toHaveLength(N);
  });

  it("keeps order for a socket that joins while messages are being posted", async () => {
    const [alice, bob] = (await newUsers(2, "conc")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const early = await open(conversationSocketUrl(alice, conv.conversationId));
    const first = Array.from({ length: 10 }, () => postMessage(alice, conv.conversationId));
    const late = await open(conversationSocketUrl(bob, conv.conversationId));
    const second = Array.from({ length: 10 }, () => postMessage(bob, conv.conversationId));
    await Promise.all([...first, ...second]);

    expect((await waitForMessages(early, 20, undefined, 15_000)).map((m) => m.seq)).toEqual(run(1, 20));
    // The late socket may start anywhere, but from there on it has no gap and no repeat up to 20.
    const lateSeqs = await late.waitFor((frames) => {
      const seqs = newMessages(frames).map((m) => m.seq);
      return seqs.at(-1) === 20 ? seqs : undefined;
    }, 15_000);
    expect(lateSeqs).toEqual(run(lateSeqs[0]!, lateSeqs.length));
  });
});

describe("conversation socket: removal", () => {
  it("sends participantRemoved to the removed user's socket, then closes it with 4003; the others stay", async () => {
    const [alice, bob, carol] = (await newUsers(3, "rm")) as [TestUser, TestUser, TestUser];
    const conv = await createConversation(alice, [bob, carol]);
    const aliceWs = await open(conversationSocketUrl(alice, conv.conversationId));
    const bobWs = await open(conversationSocketUrl(bob, conv.conversationId));
    const carolWs = await open(conversationSocketUrl(carol, conv.conversationId));

    const res = await api("DELETE", `/conversations/${conv.conversationId}/participants/${bob.username}`, {
      token: alice.token,
    });
    expect(res.status).toBe(204);

    const closed = await bobWs.closed;
    expect(closed.code).toBe(4003);
    const expected = {
      type: "participantRemoved",
      data: { conversationId: conv.conversationId, userId: bob.userId, username: bob.username, by: alice.userId },
    };
    // The event came first, then the close.
    expect(bobWs.frames).toEqual([expected]);
    for (const ws of [aliceWs, carolWs]) {
      expect(await ws.waitFor((frames) => frames.find((f) => f.type === "participantRemoved"))).toEqual(expected);
    }

    // Access is gone at once: REST and a new socket are refused; the others carry on.
    expect((await api("GET", `/conversations/${conv.conversationId}/messages`, { token: bob.token })).status).toBe(403);
    const again = track(connectSocket(conversationSocketUrl(bob, conv.conversationId)));
    expect((await again.closed).code).toBe(1008);
    // The removal calls for a new epoch: refused under the old one, accepted once Carol rotates.
    const stale = await api("POST", "/messages", {
      token: carol.token,
      body: {
        conversationId: conv.conversationId,
        keyEpoch: 1,
        nonce: randomB64(12),
        ciphertext: randomB64(8),
        authTag: randomB64(16),
        signature: randomB64(64),
      },
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ error: { details: [{ path: "epoch", message: "rotation required" }] } });
    const epoch = await rotate(carol, conv.conversationId);
    expect(epoch).toBe(2);
    const posted = await postMessage(carol, conv.conversationId, { keyEpoch: epoch });
    for (const ws of [aliceWs, carolWs]) expectMatchesPosted((await waitForMessages(ws, 1))[0]!, posted);
    expect(aliceWs.isClosed() || carolWs.isClosed()).toBe(false);
  });

  it("closes every socket of a user who leaves (removes themselves) with 4003", async () => {
    const [alice, bob] = (await newUsers(2, "leave")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const aliceWs = await open(conversationSocketUrl(alice, conv.conversationId));
    const bobPhone = await open(conversationSocketUrl(bob, conv.conversationId));
    const bobLaptop = await open(conversationSocketUrl(bob, conv.conversationId));

    const res = await api("DELETE", `/conversations/${conv.conversationId}/participants/${bob.username}`, {
      token: bob.token,
    });
    expect(res.status).toBe(204);
    const expected = {
      type: "participantRemoved",
      data: { conversationId: conv.conversationId, userId: bob.userId, username: bob.username, by: bob.userId },
    };
    for (const ws of [bobPhone, bobLaptop]) {
      expect((await ws.closed).code).toBe(4003);
      expect(ws.frames).toEqual([expected]);
    }
    expect(await aliceWs.waitFor((frames) => frames[0])).toEqual(expected);
    expect(aliceWs.isClosed()).toBe(false);
  });
});
