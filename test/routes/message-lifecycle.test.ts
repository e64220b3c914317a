import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  errorOf,
  getConversation,
  history,
  json,
  messageBody,
  registerUsers,
  sendMessage,
  type TestUser,
} from "../helpers/api";
import { shardD1Of } from "../helpers/databases";
import { conversationSocket, inboxSocket } from "../helpers/sockets";

const del = (user: TestUser, messageId: number) => call("DELETE", `/messages/${messageId}`, { token: user.token });
const setTtl = (user: TestUser, id: number, messageTtlSeconds: number | null) =>
  call("PUT", `/conversations/${id}/settings`, { token: user.token, body: { messageTtlSeconds } });

const rowOf = (messageId: number) =>
  shardD1Of(messageId)
    .prepare("select ciphertext, nonce, signature, deleted, relates_to_id, expires_at from messages where id = ?")
    .bind(messageId)
    .first<{ ciphertext: ArrayBuffer | null; nonce: unknown; signature: unknown; deleted: number }>();

describe("relations", () => {
  it("stores reply, edit and reaction and returns relatesTo; the body stays ciphertext", async () => {
    const [alice, bob] = await registerUsers("rel", "rel");
    const id = await createConversation(alice, bob);
    const { body: first } = await sendMessage(alice, id);
    for (const kind of ["reply", "reaction"] as const) {
      expect((await sendMessage(bob, id, { relatesTo: { messageId: first.messageId, kind } })).status).toBe(201);
    }
    expect((await sendMessage(alice, id, { relatesTo: { messageId: first.messageId, kind: "edit" } })).status).toBe(
      201,
    );
    const page = (await history(bob, id)).reverse();
    expect(page.map((m) => m.relatesTo)).toEqual([
      null,
      { messageId: first.messageId, kind: "reply" },
      { messageId: first.messageId, kind: "reaction" },
      { messageId: first.messageId, kind: "edit" },
    ]);
    expect(page[1].ciphertext).toEqual(expect.any(String));
  });

  it("answers 422 for another conversation's message, an unknown one, someone else's edit or a bad kind", async () => {
    const [alice, bob] = await registerUsers("rel", "rel");
    const id = await createConversation(alice, bob);
    const other = await createConversation(alice, bob);
    const { body: mine } = await sendMessage(alice, id);
    const { body: elsewhere } = await sendMessage(alice, other);
    const cases = [
      { messageId: elsewhere.messageId, kind: "reply" },
      { messageId: 999_999_999, kind: "reaction" },
      { messageId: mine.messageId, kind: "forward" },
    ];
    for (const relatesTo of cases) {
      const res = await call("POST", "/messages", { token: bob.token, body: messageBody(id, { relatesTo }) });
      expect(res.status).toBe(422);
    }
    const edit = await call("POST", "/messages", {
      token: bob.token,
      body: messageBody(id, { relatesTo: { messageId: mine.messageId, kind: "edit" } }),
    });
    expect(edit.status).toBe(422);
    expect((await errorOf(edit)).details?.[0]?.message).toMatch(/own/);
    expect((await getConversation(alice, id)).lastSeq).toBe(1);
  });

  it("keeps idempotency: a retry answers 200 with the first answer", async () => {
    const [alice, bob] = await registerUsers("rel", "rel");
    const id = await createConversation(alice, bob);
    const { body: first } = await sendMessage(alice, id);
    const extra = { clientMessageId: "retry-1", relatesTo: { messageId: first.messageId, kind: "reply" } };
    const a = await sendMessage(bob, id, extra);
    const b = await sendMessage(bob, id, extra);
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.body).toEqual(a.body);
  });
});

describe("DELETE /messages/{id}", () => {
  it("tombstones its sender's message (204, again 204), erases the bytes, keeps seq and relatesTo", async () => {
    const [alice, bob] = await registerUsers("del", "del");
    const id = await createConversation(alice, bob);
    const { body: first } = await sendMessage(alice, id);
    const { body: reply } = await sendMessage(alice, id, { relatesTo: { messageId: first.messageId, kind: "reply" } });
    await sendMessage(bob, id);
    expect((await del(bob, reply.messageId)).status).toBe(403);
    expect((await del(alice, reply.messageId)).status).toBe(204);
    expect((await del(alice, reply.messageId)).status).toBe(204);
    const row = await rowOf(reply.messageId);
    expect(row).toMatchObject({ ciphertext: null, nonce: null, signature: null, deleted: 1 });
    for (const page of [await history(bob, id), await history(bob, id, `after=${first.messageId}`)]) {
      const tomb = page.find((m) => m.messageId === reply.messageId);
      expect(tomb).toMatchObject({
        seq: 2,
        deleted: true,
        ciphertext: null,
        nonce: null,
        authTag: null,
        signature: null,
        senderId: alice.userId,
        relatesTo: { messageId: first.messageId, kind: "reply" },
      });
      expect(page.map((m) => m.seq).sort()).toEqual(page.length === 3 ? [1, 2, 3] : [2, 3]);
    }
  });

  it("answers 403 for an unknown message and for a conversation the caller is not in", async () => {
    const [alice, bob, eve] = await registerUsers("del", "del", "del");
    const id = await createConversation(alice, bob);
    const { body } = await sendMessage(alice, id);
    expect((await del(eve, body.messageId)).status).toBe(403);
    expect((await del(alice, 999_999_999)).status).toBe(403);
    expect((await del(alice, 0)).status).toBe(422);
  });

  it("sends messageDeleted to the room and to every connected inbox", async () => {
    const [alice, bob] = await registerUsers("del", "del");
    const id = await createConversation(alice, bob);
    const { body } = await sendMessage(alice, id);
    const room = await conversationSocket(id, bob.token);
    const inbox = await inboxSocket(bob.token);
    const own = await inboxSocket(alice.token);
    expect((await del(alice, body.messageId)).status).toBe(204);
    const expected = { type: "messageDeleted", data: { conversationId: id, messageId: body.messageId, seq: 1 } };
    for (const s of [room, inbox, own]) {
      await s.waitFor((f) => f.some((x) => x.type === "messageDeleted"));
      expect(s.frames.find((x) => x.type === "messageDeleted")).toEqual(expected);
      s.ws.close();
    }
  });
});

describe("PUT /conversations/{id}/settings", () => {
  it("sets messageTtlSeconds (any member), gives new messages expiresAt, tells members with settingsChanged", async () => {
    const [alice, bob] = await registerUsers("ttl", "ttl");
    const id = await createConversation(alice, bob);
    const { body: before } = await sendMessage(alice, id);
    const inbox = await inboxSocket(alice.token);
    const res = await setTtl(bob, id, 3600);
    expect(res.status).toBe(200);
    expect((await json(res)).messageTtlSeconds).toBe(3600);
    await inbox.waitFor((f) => f.some((x) => x.type === "settingsChanged"));
    expect(inbox.frames.find((x) => x.type === "settingsChanged").data).toEqual({
      conversationId: id,
      messageTtlSeconds: 3600,
      by: bob.userId,
    });
    inbox.ws.close();
    const { body: after } = await sendMessage(alice, id);
    const page = (await history(alice, id)).reverse();
    expect(page.find((m) => m.messageId === before.messageId).expiresAt).toBeNull();
    const expiresAt = page.find((m) => m.messageId === after.messageId).expiresAt;
    expect(Date.parse(expiresAt) - Date.parse(after.timestamp)).toBe(3_600_000);
    expect((await setTtl(alice, id, null)).status).toBe(200);
    expect((await getConversation(alice, id)).messageTtlSeconds).toBeNull();
  });

  it("answers 422 outside 30..31536000 and 403 to non-participants", async () => {
    const [alice, bob, eve] = await registerUsers("ttl", "ttl", "ttl");
    const id = await createConversation(alice, bob);
    for (const bad of [29, 31_536_001, 1.5, "60"]) {
      expect(
        (await call("PUT", `/conversations/${id}/settings`, { token: alice.token, body: { messageTtlSeconds: bad } }))
          .status,
      ).toBe(422);
    }
    expect((await setTtl(alice, id, 30)).status).toBe(200);
    expect((await setTtl(alice, id, 31_536_000)).status).toBe(200);
    expect((await setTtl(eve, id, 60)).status).toBe(403);
  });
});
