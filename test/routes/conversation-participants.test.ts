import { beforeEach, describe, expect, it } from "vitest";
import {
  accept,
  addBody,
  allConversations,
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
  rotate,
  sendMessage,
  type TestUser,
  uniqueName,
} from "../helpers/api";

// Users are shared: every test makes its own conversation, so membership changes stay inside it.
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let outsider: TestUser;

// Fresh people for every test: creating and adding are limited to 20 a minute per user.
beforeEach(async () => {
  [alice, bob, carol, outsider] = await registerUsers("alice", "bob", "Carol", "outsider");
});

const post = (caller: TestUser, id: number, body: unknown) =>
  call("POST", `/conversations/${id}/participants`, { token: caller.token, body });
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
    await call("GET", `/conversations/${id}/keys`, { token: user.token }),
    await call("GET", `/conversations/${id}/devices`, { token: user.token }),
    await call("POST", "/messages", { token: user.token, body: messageBody(id) }),
  ]) {
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("forbidden");
  }
}

describe("POST /conversations/{id}/participants", () => {
  it("adds the user with a new epoch: 201 Conversation for the caller; the newcomer reads from its join on and writes", async () => {
    const id = await createConversation(alice, bob);
    const earlier = await sendMessage(bob, id);
    expect(earlier.status).toBe(201);
    // Any participant may add, not only the creator; the name in another case still finds the user.
    const body = { ...(await addBody(bob, id, carol)), username: carol.username.toLowerCase() };
    const res = await post(bob, id, body);
    expect(res.status).toBe(201);
    const answer = await json(res);
    // The caller's own view, as GET answers it, now listing the newcomer, at epoch 2.
    expect(answer).toEqual(await getConversation(bob, id));
    expect(answer).toMatchObject({ epoch: 2, rotationNeeded: false });
    expect(answer.participants).toContainEqual({
      userId: carol.userId,
      username: carol.username,
      joinedAt: expect.stringMatching(ISO_MS),
      role: "member",
      status: "invited",
      lastReadSeq: 0,
    });
    expect(answer.participants).toHaveLength(3);

    const seen = await getConversation(carol, id);
    const carolsKey = body.keys.find((k) => k.deviceId === carol.deviceId)!;
    expect(seen.key).toMatchObject({ epoch: 2, wrappedKey: carolsKey.wrappedKey });
    // The newcomer never receives an earlier epoch's key, nor what was posted before it joined.
    expect(
      (await json(await call("GET", `/conversations/${id}/keys`, { token: carol.token }))).map((k: any) => k.epoch),
    ).toEqual([2]);
    expect(await history(carol, id)).toEqual([]);
    // A message request: carol never accepted bob; once she does, she writes.
    expect((await sendMessage(carol, id, { keyEpoch: 2 })).status).toBe(403);
    await accept(carol, id);
    const fromCarol = await sendMessage(carol, id, { keyEpoch: 2 });
    expect(fromCarol.status).toBe(201);
    expect((await history(carol, id)).map((m) => m.messageId)).toEqual([fromCarol.body.messageId]);
    expect((await history(alice, id)).map((m) => m.messageId)).toEqual([
      fromCarol.body.messageId,
      earlier.body.messageId,
    ]);
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId, carol.userId]));
  });

  it("answers 409 for someone already in, also named in another case", async () => {
    const id = await createConversation(alice, bob);
    for (const name of [bob.username, bob.username.toUpperCase(), alice.username]) {
      const body = { ...(await addBody(alice, id, carol)), username: name };
      const res = await post(alice, id, body);
      expect(res.status, name).toBe(409);
      expect((await errorOf(res)).code).toBe("conflict");
    }
    expect(await getConversation(alice, id)).toMatchObject({ epoch: 1 });
  });

  it("answers 409 with the current epoch for a stale epoch, and 422 naming the devices for inexact coverage", async () => {
    const id = await createConversation(alice, bob);
    const body = await addBody(alice, id, carol);
    const stale = await post(alice, id, { ...body, epoch: 1 });
    expect(stale.status).toBe(409);
    expect((await errorOf(stale)).details).toEqual([{ path: "epoch", message: "current is 1" }]);
    const withoutCarol = body.keys.filter((k) => k.deviceId !== carol.deviceId);
    const missing = await post(alice, id, { ...body, keys: withoutCarol });
    expect(missing.status).toBe(422);
    expect((await errorOf(missing)).details).toEqual([
      { path: "keys", message: `missing device ids: ${carol.deviceId}` },
    ]);
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
    expect(await getConversation(alice, id)).toMatchObject({ epoch: 1 });
  });

  it("answers 422 naming an unknown username, and 422 for a bad wrappedKey or signature", async () => {
    const id = await createConversation(alice, bob);
    const ghost = uniqueName("ghost");
    const unknown = await post(alice, id, { ...(await addBody(alice, id, carol)), username: ghost });
    expect(unknown.status).toBe(422);
    const error = await errorOf(unknown);
    expect(error.message).toContain(ghost);
    expect(error.details).toContainEqual({ path: "username", message: expect.stringContaining(ghost) });

    for (const [change, path] of [
      [{ wrappedKey: b64(randomBytes(15)) }, "keys.0.wrappedKey"],
      [{ wrappedKey: b64(randomBytes(1025)) }, "keys.0.wrappedKey"],
      [{ wrappedKey: "nope" }, "keys.0.wrappedKey"],
      [{ signature: b64(randomBytes(32)) }, "keys.0.signature"],
    ] as const) {
      const body = await addBody(alice, id, carol);
      const res = await post(alice, id, { ...body, keys: [{ ...body.keys[0]!, ...change }, ...body.keys.slice(1)] });
      expect(res.status).toBe(422);
      expect((await errorOf(res)).details?.map((d) => d.path)).toContain(path);
    }
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
  });

  it("answers 403 when the caller is not in the conversation, and adds nobody", async () => {
    const id = await createConversation(alice, bob);
    const res = await post(outsider, id, await addBody(alice, id, outsider));
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("forbidden");
    expect((await post(outsider, id, await addBody(alice, id, carol))).status).toBe(403);
    await expectLockedOut(outsider, id);
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
  });
});

describe("DELETE /conversations/{id}/participants/{username}", () => {
  it("removes someone: 204, and they lose access at once", async () => {
    const id = await createConversation(alice, bob, carol);
    const retry = await sendMessage(bob, id, { clientMessageId: "bob-1" });
    expect(retry.status).toBe(201);

    const res = await remove(alice, id, bob.username.toUpperCase());
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");

    await expectLockedOut(bob, id);
    // Not even an idempotent retry of a message sent while still a member gets through.
    expect((await sendMessage(bob, id, { clientMessageId: "bob-1" })).status).toBe(403);
    const bobsList = await allConversations(bob);
    expect(bobsList.map((c: any) => c.conversationId)).not.toContain(id);
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, carol.userId]));
    expect((await history(alice, id)).map((m) => m.messageId)).toEqual([retry.body.messageId]);
    // The epoch now needs rotating; the next epoch covers only the remaining devices.
    expect(await getConversation(alice, id)).toMatchObject({ epoch: 1, rotationNeeded: true });
    const devices = await json(await call("GET", `/conversations/${id}/devices`, { token: alice.token }));
    expect(devices.map((d: any) => d.deviceId).sort()).toEqual([alice.deviceId, carol.deviceId].sort());
  });

  it("lets a removed user be added back with a new key, under a new epoch", async () => {
    const id = await createConversation(alice, bob);
    expect((await remove(alice, id, bob.username)).status).toBe(204);
    const body = await addBody(alice, id, bob);
    expect(body.epoch).toBe(2);
    expect((await post(alice, id, body)).status).toBe(201);
    const seen = await getConversation(bob, id);
    expect(seen).toMatchObject({ epoch: 2, rotationNeeded: false });
    expect(seen.key.wrappedKey).toBe(body.keys.find((k) => k.deviceId === bob.deviceId)!.wrappedKey);
    expect((await sendMessage(bob, id, { keyEpoch: 2 })).status).toBe(201);
  });

  it("lets a participant leave by removing themselves; the others rotate before writing again", async () => {
    const id = await createConversation(alice, bob, carol);
    const res = await remove(carol, id, carol.username);
    expect(res.status).toBe(204);
    await expectLockedOut(carol, id);
    expect(await memberIds(bob, id)).toEqual(ids([alice.userId, bob.userId]));
    const refused = await sendMessage(bob, id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.details).toEqual([{ path: "epoch", message: "rotation required" }]);
    const epoch = await rotate(bob, id);
    expect((await sendMessage(bob, id, { keyEpoch: epoch })).status).toBe(201);
  });

  it("answers 404 for a user who is not a participant", async () => {
    const id = await createConversation(alice, bob);
    for (const name of [carol.username, uniqueName("ghost")]) {
      const res = await remove(alice, id, name);
      expect(res.status, name).toBe(404);
      expect((await errorOf(res)).code).toBe("not_found");
    }
    expect(await memberIds(alice, id)).toEqual(ids([alice.userId, bob.userId]));
    expect(await getConversation(alice, id)).toMatchObject({ rotationNeeded: false });
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
