import { describe, expect, it } from "vitest";
import {
  connectSocket,
  createConversation,
  inboxSocketUrl,
  newMessages,
  newUser,
  newUsers,
  type PostedMessage,
  postMessage,
  sleep,
  type TestUser,
  waitForMessages,
  wsUrl,
} from "./helpers.js";
import { expectMatchesPosted, run, trackSockets } from "./sockets.js";

const { track, open } = trackSockets();

describe("inbox socket", () => {
  it("gets conversationCreated with the user's own key, and newMessage for each of their conversations only", async () => {
    const [alice, bob, carol] = (await newUsers(3, "inbox")) as [TestUser, TestUser, TestUser];
    const aliceInbox = await open(inboxSocketUrl(alice));
    const bobInbox = await open(inboxSocketUrl(bob));

    const withBob = await createConversation(bob, [alice], "alice and bob");
    const withCarol = await createConversation(carol, [alice]);
    const notHers = await createConversation(bob, [carol]);

    // conversationCreated, with alice's own wrapped key (not the creator's).
    const created = await aliceInbox.waitFor((frames) => {
      const list = frames.flatMap((f) => (f.type === "conversationCreated" ? [f.data] : []));
      return list.length >= 2 ? list : undefined;
    });
    const byId = new Map(created.map((c) => [c.conversationId, c]));
    for (const conv of [withBob, withCarol]) {
      const got = byId.get(conv.conversationId);
      expect(got, `conversationCreated for ${conv.conversationId}`).toBeDefined();
      // The key is the one wrapped for alice's device, not the creator's.
      expect(got!.key?.wrappedKey).toBe(conv.keys.get(alice.deviceId));
      expect(got!.epoch).toBe(1);
      expect(got!.title).toBe(conv.title);
      expect(got!.participants.map((p) => p.userId).sort((a, b) => a - b)).toEqual(
        conv.participants.map((p) => p.userId).sort((a, b) => a - b),
      );
    }

    // Messages in all three conversations, interleaved.
    const posted: PostedMessage[] = [];
    for (let i = 0; i < 3; i++) {
      posted.push(await postMessage(bob, withBob.conversationId));
      posted.push(await postMessage(carol, withCarol.conversationId));
      posted.push(await postMessage(carol, notHers.conversationId));
    }
    const postedById = new Map(posted.map((p) => [p.messageId, p]));
    for (const conv of [withBob, withCarol]) {
      const received = await waitForMessages(aliceInbox, 3, conv.conversationId);
      expect(received.map((m) => m.seq)).toEqual([1, 2, 3]);
      for (const m of received) expectMatchesPosted(m, postedById.get(m.messageId)!);
    }

    // Bob's inbox got the third conversation's messages (and its creation, with his key) ...
    const bobsView = await waitForMessages(bobInbox, 3, notHers.conversationId);
    expect(bobsView.map((m) => m.seq)).toEqual([1, 2, 3]);
    const bobCreated = bobInbox.frames.find(
      (f) => f.type === "conversationCreated" && f.data.conversationId === notHers.conversationId,
    );
    expect(bobCreated?.type === "conversationCreated" && bobCreated.data.key?.wrappedKey).toBe(
      notHers.keys.get(bob.deviceId),
    );
    // ... by which time alice's inbox has seen nothing of it.
    await sleep(300);
    const leaked = aliceInbox.frames.filter(
      (f) =>
        (f.type === "newMessage" && f.data.conversationId === notHers.conversationId) ||
        (f.type === "conversationCreated" && f.data.conversationId === notHers.conversationId),
    );
    expect(leaked).toEqual([]);
    expect(newMessages(aliceInbox.frames)).toHaveLength(6);
    expect(aliceInbox.frames.filter((f) => f.type === "conversationCreated")).toHaveLength(2);
  });

  it("keeps per-conversation seq order, each once, when many senders post at once", async () => {
    const [alice, bob] = (await newUsers(2, "inboxc")) as [TestUser, TestUser];
    const aliceInbox = await open(inboxSocketUrl(alice));
    const bobInbox = await open(inboxSocketUrl(bob));
    const conv = await createConversation(alice, [bob]);
    await aliceInbox.waitFor((frames) => frames.some((f) => f.type === "conversationCreated"));

    const N = 20;
    await Promise.all(Array.from({ length: N }, (_, i) => postMessage(i % 2 ? bob : alice, conv.conversationId)));
    for (const inbox of [aliceInbox, bobInbox]) {
      const received = await waitForMessages(inbox, N, conv.conversationId, 15_000);
      expect(received.map((m) => m.seq)).toEqual(run(1, N));
    }
    await sleep(300);
    for (const inbox of [aliceInbox, bobInbox]) expect(newMessages(inbox.frames)).toHaveLength(N);
  });

  it("answers ping with pong and refuses a bad token with 1008", async () => {
    const alice = await newUser("inboxp");
    const inbox = await open(inboxSocketUrl(alice));
    inbox.send("ping");
    await inbox.waitFor((_, texts) => texts.includes("pong"));
    inbox.send("nonsense");
    expect(await inbox.waitFor((frames) => frames.find((f) => f.type === "error"))).toMatchObject({
      error: { code: "bad_request" },
    });
    expect(inbox.isClosed()).toBe(false);

    const refused = track(connectSocket(wsUrl({ token: "garbage" })));
    expect((await refused.closed).code).toBe(1008);
  });
});
