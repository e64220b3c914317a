import { describe, expect, it } from "vitest";
import {
  addParticipant,
  allConversations,
  call,
  createConversation,
  createInvitation,
  errorOf,
  getConversation,
  registerUsers,
  sendMessage,
  type TestUser,
} from "../helpers/api";
import { conversationSocket, inboxSocket, sleep } from "../helpers/sockets";

const markRead = (user: TestUser, id: number, seq: number) =>
  call("POST", `/conversations/${id}/read`, { token: user.token, body: { seq } });

const receipts = (user: TestUser, readReceipts: boolean) =>
  call("PUT", "/users/me/settings", { token: user.token, body: { readReceipts } });

async function send(user: TestUser, id: number, n = 1, keyEpoch = 1) {
  const acks = [];
  for (let i = 0; i < n; i++) {
    const { status, body } = await sendMessage(user, id, { keyEpoch });
    expect(status).toBe(201);
    acks.push(body);
  }
  return acks;
}

describe("read state", () => {
  it("keeps a monotonic watermark: a lower seq changes nothing, beyond lastSeq is 422", async () => {
    const [alice, bob] = await registerUsers("rs", "rs");
    const id = await createConversation(alice, bob);
    await send(alice, id, 3);
    expect((await getConversation(bob, id)).lastReadSeq).toBe(0);
    expect((await markRead(bob, id, 2)).status).toBe(204);
    expect((await getConversation(bob, id)).lastReadSeq).toBe(2);
    expect((await markRead(bob, id, 1)).status).toBe(204);
    expect((await getConversation(bob, id)).lastReadSeq).toBe(2);
    const beyond = await markRead(bob, id, 4);
    expect(beyond.status).toBe(422);
    expect((await errorOf(beyond)).details?.[0]?.path).toBe("seq");
    expect((await markRead(bob, id, -1)).status).toBe(422);
    expect((await getConversation(bob, id)).lastReadSeq).toBe(2);
  });

  it("refuses a non-participant with 403 and lets an invited participant mark read", async () => {
    const [alice, bob, eve] = await registerUsers("rs", "rs", "rs");
    const id = await createInvitation(alice, bob);
    await send(alice, id, 2);
    expect((await markRead(eve, id, 1)).status).toBe(403);
    expect((await markRead(eve, 999_999_999, 0)).status).toBe(403);
    expect((await markRead(bob, id, 2)).status).toBe(204);
    const view = await getConversation(bob, id);
    expect(view.status).toBe("invited");
    expect(view.lastReadSeq).toBe(2);
    expect(view.unreadCount).toBe(0);
  });

  it("counts exactly: others' messages after the watermark, tombstones excluded, from the reader's join", async () => {
    const [alice, bob, carol] = await registerUsers("rs", "rs", "rs");
    const id = await createConversation(alice, bob);
    await send(alice, id, 3);
    await send(bob, id, 2); // bob's own messages are never unread for him
    expect((await getConversation(bob, id)).unreadCount).toBe(3);
    expect((await getConversation(alice, id)).unreadCount).toBe(2);
    await markRead(bob, id, 2);
    expect((await getConversation(bob, id)).unreadCount).toBe(1);
    // A deleted message is no longer unread.
    const [late] = await send(alice, id, 1);
    expect((await getConversation(bob, id)).unreadCount).toBe(2);
    expect((await call("DELETE", `/messages/${late.messageId}`, { token: alice.token })).status).toBe(204);
    expect((await getConversation(bob, id)).unreadCount).toBe(1);
    // Carol joins after 6 messages: only what comes after her join counts.
    expect((await addParticipant(alice, id, carol)).status).toBe(201);
    expect((await getConversation(carol, id)).unreadCount).toBe(0);
    await send(bob, id, 2, 2); // the add was an epoch commit
    expect((await getConversation(carol, id)).unreadCount).toBe(2);
    // The list says the same, in its one batch.
    const listed = (await allConversations(carol)).find((c) => c.conversationId === id);
    expect(listed.unreadCount).toBe(2);
    expect(listed.lastReadSeq).toBe(0);
  });

  it("shows participants' lastReadSeq only for users who share receipts", async () => {
    const [alice, bob] = await registerUsers("rs", "rs");
    const id = await createConversation(alice, bob);
    await send(alice, id, 2);
    await markRead(bob, id, 2);
    const shown = (await getConversation(alice, id)).participants.find((p: any) => p.userId === bob.userId);
    expect(shown.lastReadSeq).toBe(2);
    expect((await receipts(bob, false)).status).toBe(200);
    const hidden = (await getConversation(alice, id)).participants.find((p: any) => p.userId === bob.userId);
    expect(hidden.lastReadSeq).toBeNull();
    // Bob still sees his own watermark as the caller.
    expect((await getConversation(bob, id)).lastReadSeq).toBe(2);
  });

  it("sends `read` to everyone for a user sharing receipts, and only to the reader's own devices otherwise", async () => {
    const [alice, bob] = await registerUsers("rs", "rs");
    const id = await createConversation(alice, bob);
    await send(alice, id, 3);
    const aliceRoom = await conversationSocket(id, alice.token);
    const aliceInbox = await inboxSocket(alice.token);
    const bobInbox = await inboxSocket(bob.token);
    await markRead(bob, id, 1);
    const expected = { type: "read", data: { conversationId: id, userId: bob.userId, seq: 1 } };
    await aliceRoom.waitFor((f) => f.some((x) => x.type === "read"));
    await aliceInbox.waitFor((f) => f.some((x) => x.type === "read"));
    await bobInbox.waitFor((f) => f.some((x) => x.type === "read"));
    expect(aliceRoom.frames.filter((f) => f.type === "read")).toEqual([expected]);
    // A lower seq changes nothing and tells nobody.
    await markRead(bob, id, 1);
    await receipts(bob, false);
    await markRead(bob, id, 3);
    await bobInbox.waitFor((f) => f.filter((x) => x.type === "read").length === 2);
    await sleep(300);
    expect(aliceRoom.frames.filter((f) => f.type === "read")).toHaveLength(1);
    expect(aliceInbox.frames.filter((f) => f.type === "read")).toHaveLength(1);
    expect(bobInbox.frames.filter((f) => f.type === "read").at(-1).data.seq).toBe(3);
    for (const s of [aliceRoom, aliceInbox, bobInbox]) s.ws.close();
  });
});
