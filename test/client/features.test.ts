// Issue #13 in the library: relations encrypted like messages and folded back by `applyRelations`,
// delete for everyone, read marks, message TTL, the typing tracker and `sendTyping`'s throttle.
import { afterEach, describe, expect, it, vi } from "vitest";
import { applyRelations, ParleyClient, type ReceivedMessage, TypingTracker, totalUnread } from "../../client/index.ts";
import { FakeParley } from "./fake-server.ts";

function world() {
  const server = new FakeParley();
  const make = () =>
    new ParleyClient({ baseUrl: "http://parley.test", fetch: server.fetch, retry: { baseDelayMs: 1 } });
  return { server, make };
}

async function pair() {
  const { server, make } = world();
  const alice = make();
  await alice.register("alice", "correct horse");
  const bob = make();
  await bob.register("bob", "battery staple");
  const { conversationId } = await alice.createConversation(["bob"]);
  await bob.acceptConversation(conversationId); // a message request until bob accepts
  return { server, alice, bob, conversationId };
}

afterEach(() => vi.useRealTimers());

describe("relations", () => {
  it("sends replies, edits and reactions encrypted, with relatesTo, and folds them into their target", async () => {
    const { server, alice, bob, conversationId } = await pair();
    const first = await alice.sendMessage(conversationId, "lunch at noon?");
    await bob.reply(conversationId, first.messageId, "yes!");
    await alice.edit(conversationId, first.messageId, "lunch at one?");
    await bob.react(conversationId, first.messageId, "👍");
    await alice.react(conversationId, first.messageId, "👍");
    // The last attempt of each message (a send may be repeated after a 409 and a rotation).
    const byId = new Map<string, any>();
    for (const r of server.log)
      if (r.method === "POST" && r.path === "/messages") byId.set(r.body.clientMessageId, r.body);
    const posts = [...byId.values()];
    expect(posts.map((b) => b.relatesTo?.kind ?? null)).toEqual([null, "reply", "edit", "reaction", "reaction"]);
    // Never the text in the clear: only ciphertext travels.
    expect(JSON.stringify(posts)).not.toMatch(/lunch|yes!|👍/);

    const history = (await bob.messages(conversationId, { limit: 50 })).reverse();
    const threaded = applyRelations(history);
    expect(threaded.map((m) => m.displayText)).toEqual(["lunch at one?", "yes!"]);
    expect(threaded[0]!.edited).toBe(true);
    expect(threaded[0]!.reactions.get("👍")?.sort()).toEqual([alice.userId, bob.userId].sort());
    expect(threaded[1]!.replyTo).toBe(first.messageId);
  });

  it("ignores an edit by someone other than the sender and relations to tombstones", () => {
    const base = {
      conversationId: 1,
      keyEpoch: 1,
      senderUsername: "x",
      senderDeviceId: 1,
      timestamp: "",
      clientMessageId: null,
      expiresAt: null,
      attachments: [],
    };
    const msg = (
      messageId: number,
      senderId: number,
      text: string | null,
      relatesTo: ReceivedMessage["relatesTo"] = null,
      deleted = false,
    ): ReceivedMessage =>
      text === null
        ? {
            ...base,
            messageId,
            seq: messageId,
            senderId,
            relatesTo,
            deleted,
            ok: false,
            text: null,
            error: new Error("deleted"),
          }
        : { ...base, messageId, seq: messageId, senderId, relatesTo, deleted, ok: true, text };
    const out = applyRelations([
      msg(1, 1, "original"),
      msg(2, 2, "hijack", { messageId: 1, kind: "edit" }),
      msg(3, 1, null, null, true),
      msg(4, 2, "❤️", { messageId: 3, kind: "reaction" }),
    ]);
    expect(out.map((m) => [m.messageId, m.displayText, m.edited, m.reactions.size])).toEqual([
      [1, "original", false, 0],
      [3, null, false, 0],
    ]);
  });
});

describe("deletion, read state, TTL", () => {
  it("deletes for everyone, marks read and sets the TTL through the contract's routes", async () => {
    const { server, alice, bob, conversationId } = await pair();
    const sent = await alice.sendMessage(conversationId, "oops");
    await expect(bob.deleteMessage(sent.messageId)).rejects.toMatchObject({ status: 403 });
    await alice.deleteMessage(sent.messageId);
    const [tomb] = await bob.messages(conversationId);
    expect(tomb).toMatchObject({ deleted: true, ok: false });
    await bob.markRead(conversationId, sent.seq);
    expect(server.log.find((r) => r.path.endsWith("/read"))?.body).toEqual({ seq: sent.seq });
    const updated = await alice.setMessageTtl(conversationId, 3600);
    expect(updated.messageTtlSeconds).toBe(3600);
    expect(server.log.find((r) => r.path.endsWith("/settings"))).toMatchObject({
      method: "PUT",
      body: { messageTtlSeconds: 3600 },
    });
    expect(totalUnread([{ unreadCount: 2 }, { unreadCount: 3 }])).toBe(5);
  });
});

describe("TypingTracker", () => {
  it("shows a typist for its display time, renewed by each frame, ended by stop", () => {
    vi.useFakeTimers();
    const changes: [number, number[]][] = [];
    const tracker = new TypingTracker((id, users) => changes.push([id, users]), 4000);
    tracker.typing({ conversationId: 7, userId: 2 });
    vi.advanceTimersByTime(3000);
    tracker.typing({ conversationId: 7, userId: 2 }); // renewed, no change reported
    vi.advanceTimersByTime(2000);
    tracker.typing({ conversationId: 7, userId: 3 });
    vi.advanceTimersByTime(1500);
    expect(tracker.typists(7)).toEqual([2, 3]);
    vi.advanceTimersByTime(600);
    expect(tracker.typists(7)).toEqual([3]);
    tracker.stop(7, 3);
    expect(changes).toEqual([
      [7, [2]],
      [7, [2, 3]],
      [7, [3]],
      [7, []],
    ]);
    expect(() => new TypingTracker(() => {}, 1000)).toThrow(RangeError);
    tracker.dispose();
  });
});
