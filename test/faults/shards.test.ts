import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { applySnapshotStatements, readAccountSnapshot } from "../../src/db/mirror";
import { databases } from "../../src/db/shards";
import {
  accept,
  activeDeviceIds,
  addBody,
  allConversations,
  approve,
  call,
  json,
  loginPendingDevice,
  messageBody,
  registerUser,
  sendMessage,
  type TestUser,
  wrapFor,
} from "../helpers/api";
import { directoryD1, shardD1Of } from "../helpers/databases";
import { failingD1 } from "../helpers/faults";
import { dump } from "../helpers/state";

/*
 * The steps that touch the directory and a shard cannot be one transaction. These tests fail the
 * second database's write (or one shard of several) and check the promise of src/db/lifecycle.ts
 * and src/db/user-conversations.ts: an error to retry, no lasting inconsistency, and never access
 * that should not be granted.
 */

type Overrides = Record<string, unknown>;

const callWith = (env: Overrides, method: string, path: string, token: string, body?: unknown) =>
  call(method, path, { token, body, env });

/** Captures console.error for the test (the expected "unhandled error" lines), returning what was logged. */
function quietErrors(): () => string[] {
  const spy = vi.spyOn(console, "error").mockImplementation(() => {});
  onTestFinished(() => spy.mockRestore());
  return () => spy.mock.calls.map((args) => args.map(String).join(" "));
}

/** Fails, in every shard, only the statements whose SQL matches `target` (the first of them). */
function failingShards(target: RegExp): Overrides {
  const spare = new RegExp(`^(?!${target.source})`);
  return {
    SHARD_0: failingD1(env.SHARD_0, 1, spare).db,
    SHARD_1: failingD1(env.SHARD_1, 1, spare).db,
  };
}

async function createBody(creator: TestUser, ...others: TestUser[]) {
  const members = [creator, ...others];
  const devices = await activeDeviceIds(creator, ...members);
  return {
    participants: members.map((u) => u.username),
    keys: await Promise.all(devices.map((id) => wrapFor(creator, id))),
  };
}

/** Creates a conversation in shard `shard` (SHARD_PLACEMENT narrowed to it); the others accept. */
async function createIn(shard: number, creator: TestUser, ...others: TestUser[]): Promise<number> {
  const res = await callWith(
    { SHARD_PLACEMENT: String(shard) },
    "POST",
    "/conversations",
    creator.token,
    await createBody(creator, ...others),
  );
  expect(res.status).toBe(201);
  const id = (await json(res)).conversationId as number;
  expect(id % 4096).toBe(shard);
  await Promise.all(others.map((u) => accept(u, id)));
  return id;
}

const storedMessages = async (conversationId: number) =>
  (
    await shardD1Of(conversationId)
      .prepare("select count(*) as n from messages where conversation_id = ?")
      .bind(conversationId)
      .first<{ n: number }>()
  )?.n;

describe("steps across the directory and a shard", () => {
  it("create: the shard's write fails after the directory's index write: 500, nothing listed, no access; the retry creates one", async () => {
    const [alice, bob] = [await registerUser("sfa"), await registerUser("sfb")];
    const logged = quietErrors();
    const body = await createBody(alice, bob);
    const failed = await callWith(
      failingShards(/insert into "conversations"/),
      "POST",
      "/conversations",
      alice.token,
      body,
    );
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toMatch(/insert|sqlite|select/i);
    expect(logged().length).toBeGreaterThan(0);
    // The index may name a shard (a superset), but the shards are the truth: nothing is listed.
    expect(await allConversations(alice)).toEqual([]);
    expect(await allConversations(bob)).toEqual([]);

    const retried = await call("POST", "/conversations", { token: alice.token, body });
    expect(retried.status).toBe(201);
    const { conversationId } = await json(retried);
    expect((await allConversations(alice)).map((c) => c.conversationId)).toEqual([conversationId]);
    expect((await allConversations(bob)).map((c) => c.conversationId)).toEqual([conversationId]);
  });

  it("add: the shard's commit fails after the newcomer was indexed and copied: 500, the newcomer sees nothing; the retry adds them", async () => {
    const [alice, bob, carol] = [await registerUser("sfa"), await registerUser("sfb"), await registerUser("sfc")];
    const id = await createIn(1, alice, bob);
    quietErrors();
    const body = await addBody(alice, id, carol);
    const failed = await callWith(
      failingShards(/insert into "epochs"/),
      "POST",
      `/conversations/${id}/participants`,
      alice.token,
      body,
    );
    expect(failed.status).toBe(500);
    expect(await allConversations(carol)).toEqual([]);
    expect((await call("GET", `/conversations/${id}`, { token: carol.token })).status).toBe(403);
    expect((await call("GET", `/conversations/${id}/messages`, { token: carol.token })).status).toBe(403);

    const retried = await call("POST", `/conversations/${id}/participants`, { token: alice.token, body });
    expect(retried.status).toBe(201);
    expect((await allConversations(carol)).map((c) => c.conversationId)).toEqual([id]);
  });

  it("an add refused for its keys (422) stores nothing in any database: no index entry, no copied account", async () => {
    const [alice, bob, carol] = [await registerUser("sfa"), await registerUser("sfb"), await registerUser("sfc")];
    const id = await createIn(0, alice, bob);
    const body = await addBody(alice, id, carol);
    const before = await dump();
    const res = await call("POST", `/conversations/${id}/participants`, {
      token: alice.token,
      body: { ...body, keys: body.keys.slice(1) },
    });
    expect(res.status).toBe(422);
    expect(await dump()).toEqual(before);
  });

  it("revoke: one shard fails, so the directory is not touched (500, retry); the device never posts where it was revoked; the retry completes it", async () => {
    const alice = await registerUser("sfr");
    const bob = await registerUser("sfr");
    const phone = await loginPendingDevice(alice, "phone");
    expect((await approve(alice, phone)).status).toBe(200);
    const inZero = await createIn(0, alice, bob);
    const inOne = await createIn(1, alice, bob);
    expect((await sendMessage(phone, inZero)).status).toBe(201);
    expect((await sendMessage(phone, inOne)).status).toBe(201);

    quietErrors();
    const failed = await callWith(
      { SHARD_1: failingD1(env.SHARD_1, 1, /^(?!insert into "devices")/).db },
      "DELETE",
      `/devices/${phone.deviceId}`,
      alice.token,
      { password: alice.password },
    );
    expect(failed.status).toBe(500);
    // The directory still has the device: the owner sees it and retries.
    const listed = await json(await call("GET", "/devices", { token: alice.token }));
    expect(listed.find((d: { deviceId: number }) => d.deviceId === phone.deviceId)?.status).toBe("active");
    // Shard 0 revoked it first: the phone's token is refused there, even though the directory still accepts it.
    const before = await storedMessages(inZero);
    expect((await sendMessage(phone, inZero)).status).not.toBe(201);
    expect(await storedMessages(inZero)).toBe(before);

    expect(
      (
        await call("DELETE", `/devices/${phone.deviceId}`, {
          token: alice.token,
          body: { password: alice.password },
        })
      ).status,
    ).toBe(204);
    for (const id of [inZero, inOne]) {
      const count = await storedMessages(id);
      expect((await sendMessage(phone, id)).status).toBe(401);
      expect(await storedMessages(id)).toBe(count);
    }
  });

  it("a copy read before a revocation and written after it cannot bring the device back", async () => {
    const alice = await registerUser("sfs");
    const bob = await registerUser("sfs");
    const phone = await loginPendingDevice(alice, "phone");
    expect((await approve(alice, phone)).status).toBe(200);
    const id = await createIn(0, alice, bob);
    const dbs = databases(env);
    const stale = await readAccountSnapshot(dbs.directory, [alice.userId]);
    expect(stale.devices.find((d) => d.id === phone.deviceId)?.status).toBe("active");

    const revoked = await call("DELETE", `/devices/${phone.deviceId}`, {
      token: alice.token,
      body: { password: alice.password },
    });
    expect(revoked.status).toBe(204);
    const shard = dbs.shardOf(id)!.db;
    const [first, ...rest] = applySnapshotStatements(shard, stale);
    await shard.batch([first!, ...rest]);

    const copy = await shardD1Of(id)
      .prepare("select status from devices where id = ?")
      .bind(phone.deviceId)
      .first<{ status: string }>();
    expect(copy?.status).toBe("revoked");
    const live = await shardD1Of(id)
      .prepare("select count(*) as n from sessions where device_id = ? and ended_at is null")
      .bind(phone.deviceId)
      .first<{ n: number }>();
    expect(live?.n).toBe(0);
    // And the conversation needs a new epoch without the phone, whatever copy came last.
    const conversation = await json(await call("GET", `/conversations/${id}`, { token: alice.token }));
    expect(conversation.rotationNeeded).toBe(true);
  });

  it("a new session reaches a shard when first needed: a fresh login posts at once, and the shard then holds its copy", async () => {
    const alice = await registerUser("sfn");
    const bob = await registerUser("sfn");
    const id = await createIn(1, alice, bob);
    const login = await call("POST", "/auth/login", {
      body: { username: alice.username, password: alice.password, deviceId: alice.deviceId },
    });
    const session = await json(login);
    const copied = () =>
      shardD1Of(id)
        .prepare("select count(*) as n from sessions where id = ?")
        .bind(session.sessionId)
        .first<{ n: number }>();
    expect((await copied())?.n).toBe(0);
    const sent = await call("POST", "/messages", { token: session.accessToken, body: messageBody(id) });
    expect(sent.status).toBe(201);
    expect((await copied())?.n).toBe(1);
  });

  it("a consent lost after the conversation committed: the answer is still 201, and the peer's next conversation starts as a request", async () => {
    const alice = await registerUser("sfc");
    const bob = await registerUser("sfc");
    const logged = quietErrors();
    const spare = /^(?!insert into "consents")/;
    const res = await callWith(
      { DIRECTORY: failingD1(directoryD1(), 1, spare).db },
      "POST",
      "/conversations",
      alice.token,
      await createBody(alice, bob),
    );
    expect(res.status).toBe(201);
    expect(logged().some((line) => line.includes("consent not recorded"))).toBe(true);
    // Alice's consent to bob was lost: what bob starts with her is a message request, the cautious side.
    const back = await call("POST", "/conversations", { token: bob.token, body: await createBody(bob, alice) });
    expect(back.status).toBe(201);
    const view = await json(
      await call("GET", `/conversations/${(await json(back)).conversationId}`, { token: alice.token }),
    );
    expect(view.status).toBe("invited");
  });
});
