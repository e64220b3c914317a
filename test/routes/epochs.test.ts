import { describe, expect, it } from "vitest";
import {
  addParticipant,
  call,
  conversationDeviceIds,
  createConversation,
  errorOf,
  getConversation,
  history,
  json,
  registerUser,
  rotate,
  sendMessage,
  wrapFor,
} from "../helpers/api";

const commit = (user: { token: string }, id: number, body: unknown) =>
  call("POST", `/conversations/${id}/epochs`, { token: user.token, body });

describe("key epochs", () => {
  it("POST /conversations needs a key for exactly every active device (422 naming them)", async () => {
    const [alice, bob] = await Promise.all([registerUser("ep"), registerUser("ep")]);
    const participants = [alice.username, bob.username];
    const onlyMine = await call("POST", "/conversations", {
      token: alice.token,
      body: { participants, keys: [await wrapFor(alice, alice.deviceId), await wrapFor(alice, 999999)] },
    });
    expect(onlyMine.status).toBe(422);
    expect((await errorOf(onlyMine)).details).toEqual([
      { path: "keys", message: `missing device ids: ${bob.deviceId}` },
      { path: "keys", message: "unexpected device ids: 999999" },
    ]);
    const id = await createConversation(alice, bob);
    const view = await getConversation(bob, id);
    expect(view).toMatchObject({ epoch: 1, rotationNeeded: false, lastSeq: 0 });
    expect(view.key).toMatchObject({ epoch: 1, wrappedBy: { userId: alice.userId, deviceId: alice.deviceId } });
    const devices = await json(await call("GET", `/conversations/${id}/devices`, { token: bob.token }));
    expect(devices.map((d: { deviceId: number; username: string }) => [d.deviceId, d.username])).toEqual([
      [alice.deviceId, alice.username],
      [bob.deviceId, bob.username],
    ]);
  });

  it("commit: shape 422, stale 409 with current, coverage 422, then 201 and messages need the new epoch", async () => {
    const [alice, bob] = await Promise.all([registerUser("ep"), registerUser("ep")]);
    const id = await createConversation(alice, bob);
    const keys = await Promise.all((await conversationDeviceIds(alice, id)).map((d) => wrapFor(alice, d)));
    expect((await commit(alice, id, { epoch: 2, keys: [{ ...keys[0], signature: "AAAA" }] })).status).toBe(422);
    const stale = await commit(alice, id, { epoch: 5, keys });
    expect(stale.status).toBe(409);
    expect((await errorOf(stale)).details).toEqual([{ path: "epoch", message: "current is 1" }]);
    const missing = await commit(alice, id, { epoch: 2, keys: keys.slice(0, 1) });
    expect(missing.status).toBe(422);
    expect((await errorOf(missing)).details).toEqual([
      { path: "keys", message: `missing device ids: ${bob.deviceId}` },
    ]);
    const outsider = await registerUser("ep");
    expect((await commit(outsider, id, { epoch: 2, keys })).status).toBe(403);
    const ok = await commit(alice, id, { epoch: 2, keys });
    expect(ok.status).toBe(201);
    expect(await json(ok)).toEqual({ epoch: 2 });
    const old = await sendMessage(bob, id, { keyEpoch: 1 });
    expect(old.status).toBe(409);
    expect(old.body.error.details).toEqual([{ path: "keyEpoch", message: "current is 2" }]);
    expect((await sendMessage(bob, id, { keyEpoch: 2 })).status).toBe(201);
    const listed = await json(await call("GET", `/conversations/${id}/keys`, { token: bob.token }));
    expect(listed.map((k: { epoch: number }) => k.epoch)).toEqual([2, 1]);
  });

  it("two racing commits of the same epoch: exactly one 201, the other 409", async () => {
    const [alice, bob] = await Promise.all([registerUser("ep"), registerUser("ep")]);
    const id = await createConversation(alice, bob);
    const devices = await conversationDeviceIds(alice, id);
    const bodies = await Promise.all(
      [alice, bob, alice, bob].map(async (u) => ({ u, keys: await Promise.all(devices.map((d) => wrapFor(u, d))) })),
    );
    const results = await Promise.all(bodies.map(({ u, keys }) => commit(u, id, { epoch: 2, keys })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    const view = await getConversation(alice, id);
    expect(view.epoch).toBe(2);
    const winner = bodies[results.findIndex((r) => r.status === 201)]!;
    const mine = winner.keys.find((k) => k.deviceId === alice.deviceId)!;
    expect(view.key.wrappedKey).toBe(mine.wrappedKey);
  });

  it("rotation is needed after a removal or a leave; a message then gets 409 until a new epoch", async () => {
    const [alice, bob, carol] = await Promise.all([registerUser("ep"), registerUser("ep"), registerUser("ep")]);
    const id = await createConversation(alice, bob, carol);
    expect(
      (await call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: alice.token })).status,
    ).toBe(204);
    expect((await getConversation(alice, id)).rotationNeeded).toBe(true);
    const refused = await sendMessage(alice, id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.details).toEqual([{ path: "epoch", message: "rotation required" }]);
    const epoch = await rotate(bob, id);
    expect((await getConversation(alice, id)).rotationNeeded).toBe(false);
    expect((await sendMessage(alice, id, { keyEpoch: epoch })).status).toBe(201);
    expect(
      (await call("DELETE", `/conversations/${id}/participants/${bob.username}`, { token: bob.token })).status,
    ).toBe(204);
    expect((await getConversation(alice, id)).rotationNeeded).toBe(true);
  });

  it("idempotency wins over epochs: a retry after a rotation answers 200 with the first answer", async () => {
    const [alice, bob] = await Promise.all([registerUser("ep"), registerUser("ep")]);
    const id = await createConversation(alice, bob);
    const first = await sendMessage(alice, id, { clientMessageId: "retry-1" });
    expect(first.status).toBe(201);
    await rotate(bob, id);
    const retry = await sendMessage(alice, id, { clientMessageId: "retry-1" });
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
  });

  it("adding is an epoch commit; the newcomer sees history, keys and the view from their join on", async () => {
    const [alice, bob, dave] = await Promise.all([registerUser("ep"), registerUser("ep"), registerUser("ep")]);
    const id = await createConversation(alice, bob);
    await sendMessage(alice, id);
    await sendMessage(bob, id);
    const devices = await conversationDeviceIds(alice, id);
    const withoutDave = await Promise.all(devices.map((d) => wrapFor(alice, d)));
    const missing = await call("POST", `/conversations/${id}/participants`, {
      token: alice.token,
      body: { username: dave.username, epoch: 2, keys: withoutDave },
    });
    expect(missing.status).toBe(422);
    expect((await errorOf(missing)).details).toEqual([
      { path: "keys", message: `missing device ids: ${dave.deviceId}` },
    ]);
    const staleAdd = await call("POST", `/conversations/${id}/participants`, {
      token: alice.token,
      body: { username: dave.username, epoch: 1, keys: withoutDave },
    });
    expect(staleAdd.status).toBe(409);
    const added = await addParticipant(alice, id, dave);
    expect(added.status).toBe(201);
    expect(await json(added)).toMatchObject({ epoch: 2, rotationNeeded: false });
    expect(await history(dave, id)).toEqual([]);
    const keys = await json(await call("GET", `/conversations/${id}/keys`, { token: dave.token }));
    expect(keys.map((k: { epoch: number }) => k.epoch)).toEqual([2]);
    const sent = await sendMessage(bob, id, { keyEpoch: 2 });
    expect(sent.status).toBe(201);
    const seen = await history(dave, id);
    expect(seen.map((m) => m.seq)).toEqual([3]);
    expect(await history(dave, id, "after=1")).toHaveLength(1);
    expect(seen[0]).toMatchObject({ senderDeviceId: bob.deviceId, keyEpoch: 2, deleted: false });
  });
});
