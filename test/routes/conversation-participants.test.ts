import { beforeAll, describe, expect, it } from "vitest";
import {
  b64,
  call,
  createConversation,
  errorOf,
  getConversation,
  history,
  ISO_MS,
  json,
  messageBody,
  randomBytes,
  registerUsers,
  sendMessage,
  type TestUser,
  uniqueName,
} from "../helpers/api";

// Users are shared: every test makes its own conversation, so membership changes stay inside it.
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let outsider: TestUser;

beforeAll(async () => {
  [alice, bob, carol, outsider] = await registerUsers("alice", "bob", "Carol", "outsider");
});

const key = (bytes = 48) => b64(randomBytes(bytes));
const add = (caller: TestUser, id: number, username: string, encryptedKey = key()) =>
  call("POST", `/conversations/${id}/participants`, { token: caller.token, body: { username, encryptedKey } });
const remove = (caller: TestUser, id: number, username: string) =>
  call("DELETE", `/conversations/${id}/participants/${encodeURIComponent(username)}`, { token: caller.token });
const memberIds = async (viewer: TestUser, id: number) =>
  ids((await getConversation(viewer, id)).participants.map((p: any) => p.userId));
const ids = (list: number[]) => [...list].sort((a, b) => a - b);

/** The user gets 403 on every route of the conversation, like someone who was never in it. */
async function expectLockedOut(user: TestUser, id: number) {
  for (const res of [
    await call("GET", `/conversations/${id}`, { token: user.token }),
    await call("GET", `/conversations/${id}/messages`, { token: user.token }),
    await call("POST", "/messages", { token: user.token, body: messageBody(id) }),
  ]) {
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("forbidden");
  }
}

describe("POST /conversations/{id}/participants", () => {
  it("adds the user: 201 Conversation for the caller, and the newcomer can read and write", async () => {
    const id = await createConversation(alice, bob);
    const earlier = await sendMessage(bob, id);
    const carolKey = key();
    // Any participant may add, not only the creator.
    const res = await add(bob, id, carol.username.toLowerCase(), carolKey);
    expect(res.status).toBe(201);
    const body = await json(res);
    // The caller's own view, as GET answers it, now listing the newcomer.
    expect(body).toEqual(await getConversation(bob, id));
    expect(body.participants).toContainEqual({
      userId: carol.userId,
      username: carol.username,
      joinedAt: expect.stringMatching(ISO_MS),
    });
    expect(body.participants).toHaveLength(3);

    const seen = await getConversation(carol, id);
    expect(seen.encryptedKey).toBe(carolKey);
    expect((await history(carol, id)).map((m) => m.messageId)).toEqual([earlier.body.messageId]);
    expect((await sendMessage(carol, id)).status).toBe(201);
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId, carol.userId]));
  });

  it("answers 409 for someone already in, also named in another case", async () => {
    const id = await createConversation(alice, bob);
    for (const name of [bob.username, bob.username.toUpperCase(), alice.username]) {
      const res = await add(alice, id, name);
      expect(res.status, name).toBe(409);
      expect((await errorOf(res)).code).toBe("conflict");
    }
  });

  it("answers 422 naming an unknown username, and 422 for a bad encryptedKey", async () => {
    const id = await createConversation(alice, bob);
    const ghost = uniqueName("ghost");
    const unknown = await add(alice, id, ghost);
    expect(unknown.status).toBe(422);
    const error = await errorOf(unknown);
    expect(error.message).toContain(ghost);
    expect(error.details).toContainEqual({ path: "username", message: expect.stringContaining(ghost) });

    for (const bad of [b64(randomBytes(15)), b64(randomBytes(1025)), "nope"]) {
      const res = await add(alice, id, carol.username, bad);
      expect(res.status).toBe(422);
      expect((await errorOf(res)).details?.map((d) => d.path)).toContain("encryptedKey");
    }
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
  });

  it("answers 403 when the caller is not in the conversation, and adds nobody", async () => {
    const id = await createConversation(alice, bob);
    const res = await add(outsider, id, outsider.username);
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("forbidden");
    expect((await add(outsider, id, carol.username)).status).toBe(403);
    await expectLockedOut(outsider, id);
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
  });
});

describe("DELETE /conversations/{id}/participants/{username}", () => {
  it("removes someone: 204, and they lose access at once", async () => {
    const id = await createConversation(alice, bob, carol);
    const retry = await sendMessage(bob, id, { clientMessageId: "bob-1" });
    expect(retry.status).toBe(201);

    const res = await remove(carol, id, bob.username.toUpperCase());
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");

    await expectLockedOut(bob, id);
    // Not even an idempotent retry of a message sent while still a member gets through.
    expect((await sendMessage(bob, id, { clientMessageId: "bob-1" })).status).toBe(403);
    const bobsList = await json(await call("GET", "/conversations", { token: bob.token }));
    expect(bobsList.map((c: any) => c.conversationId)).not.toContain(id);
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, carol.userId]));
    expect((await history(alice, id)).map((m) => m.messageId)).toEqual([retry.body.messageId]);
  });

  it("lets a removed user be added back with a new key", async () => {
    const id = await createConversation(alice, bob);
    expect((await remove(alice, id, bob.username)).status).toBe(204);
    const newKey = key();
    expect((await add(alice, id, bob.username, newKey)).status).toBe(201);
    expect((await getConversation(bob, id)).encryptedKey).toBe(newKey);
  });

  it("lets a participant leave by removing themselves", async () => {
    const id = await createConversation(alice, bob, carol);
    const res = await remove(carol, id, carol.username);
    expect(res.status).toBe(204);
    await expectLockedOut(carol, id);
    expect(await memberIds(bob, id)).toEqual(ids([alice.userId, bob.userId]));
    expect((await sendMessage(bob, id)).status).toBe(201);
  });

  it("answers 404 for a user who is not a participant", async () => {
    const id = await createConversation(alice, bob);
    for (const name of [carol.username, uniqueName("ghost")]) {
      const res = await remove(alice, id, name);
      expect(res.status, name).toBe(404);
      expect((await errorOf(res)).code).toBe("not_found");
    }
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
  });

  it("answers 403 to an outsider, who removes nobody", async () => {
    const id = await createConversation(alice, bob);
    for (const name of [bob.username, outsider.username]) {
      const res = await remove(outsider, id, name);
      expect(res.status).toBe(403);
      expect((await errorOf(res)).code).toBe("forbidden");
    }
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
  });
});
