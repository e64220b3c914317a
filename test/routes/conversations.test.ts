import { beforeEach, describe, expect, it } from "vitest";
import {
  addBody,
  allConversations,
  b64,
  call,
  createConversation,
  errorOf,
  getConversation,
  ISO_MS,
  json,
  randomBytes,
  registerUser,
  registerUsers,
  sendMessage,
  sleep,
  type TestUser,
  uniqueName,
} from "../helpers/api";
import { shardD1Of } from "../helpers/databases";
import { insertUsersWithDevices } from "../helpers/db";

let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let outsider: TestUser;

// Fresh people for every test: creating and adding are limited to 20 a minute per user.
beforeEach(async () => {
  [alice, bob, carol, outsider] = await registerUsers("alice", "Bob", "carol", "outsider");
});

type KeyUpload = { deviceId: number; wrappedKey: string; signature: string };
/** A wrapped key for a device, of `bytes` bytes (opaque to the server), signed by nobody in particular. */
const wrap = (deviceId: number, bytes = 48): KeyUpload => ({
  deviceId,
  wrappedKey: b64(randomBytes(bytes)),
  signature: b64(randomBytes(64)),
});
/** The body of a create by `alice` (or `creator`) with epoch 1 wrapped for each user's (one) device. */
const bodyFor = (users: TestUser[], extra: Record<string, unknown> = {}) => ({
  participants: users.map((u) => u.username),
  keys: users.map((u) => wrap(u.deviceId)),
  ...extra,
});
const create = (creator: TestUser, body: unknown) => call("POST", "/conversations", { token: creator.token, body });
const listIds = async (user: TestUser): Promise<number[]> =>
  (await allConversations(user)).map((c: any) => c.conversationId);

async function expectValidationError(res: Response, path: string) {
  expect(res.status).toBe(422);
  const error = await errorOf(res);
  expect(error.code).toBe("validation_failed");
  expect(error.details?.map((d) => d.path)).toContain(path);
  return error;
}

describe("POST /conversations", () => {
  it("answers 201 with the Conversation at epoch 1 and the key wrapped for the creator's device", async () => {
    const keys = [wrap(alice.deviceId), wrap(bob.deviceId), wrap(carol.deviceId)];
    // Bob is named in another case: the answer lists usernames as registered.
    const participants = [alice.username, bob.username.toUpperCase(), carol.username];
    const res = await create(alice, { title: "Project", participants, keys });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body).toEqual({
      conversationId: expect.any(Number),
      title: "Project",
      createdAt: expect.stringMatching(ISO_MS),
      lastMessageId: null,
      lastSeq: 0,
      status: "member",
      epoch: 1,
      rotationNeeded: false,
      messageTtlSeconds: null,
      unreadCount: 0,
      lastReadSeq: 0,
      participants: expect.any(Array),
      key: {
        epoch: 1,
        wrappedKey: keys[0]!.wrappedKey,
        wrappedBy: { userId: alice.userId, deviceId: alice.deviceId },
        signature: keys[0]!.signature,
        createdAt: expect.stringMatching(ISO_MS),
      },
    });
    expect(Number.isInteger(body.conversationId) && body.conversationId > 0).toBe(true);
    const members = [...body.participants].sort((a: any, b: any) => a.userId - b.userId);
    const expected = [alice, bob, carol].sort((a, b) => a.userId - b.userId);
    expect(members).toEqual(
      expected.map((u) => ({
        userId: u.userId,
        username: u.username,
        joinedAt: expect.stringMatching(ISO_MS),
        // The creator is the admin; the others have not accepted yet (a message request).
        role: u === alice ? "admin" : "member",
        status: u === alice ? "member" : "invited",
        lastReadSeq: 0, // readReceipts default to true: shared
      })),
    );
  });

  it("gives each device back only its own wrapped key", async () => {
    const keys = [alice, bob, carol].map((u) => wrap(u.deviceId));
    const res = await create(alice, { participants: [alice, bob, carol].map((u) => u.username), keys });
    expect(res.status).toBe(201);
    const { conversationId } = await json(res);
    for (const [i, user] of [alice, bob, carol].entries()) {
      const own = keys[i]!;
      const single = await getConversation(user, conversationId);
      expect(single.key).toMatchObject({ wrappedKey: own.wrappedKey, signature: own.signature, epoch: 1 });
      expect(single.title).toBeNull();
      const listed = (await allConversations(user)).find((c: any) => c.conversationId === conversationId);
      expect(listed).toEqual(single);
      const stored = await json(await call("GET", `/conversations/${conversationId}/keys`, { token: user.token }));
      expect(stored).toEqual([single.key]);
      for (const other of keys.filter((k) => k !== own)) {
        expect(JSON.stringify([single, stored])).not.toContain(other.wrappedKey);
      }
    }
  });

  it("answers 422 when the participants do not include the creator, and creates nothing", async () => {
    const before = await listIds(bob);
    const res = await create(alice, bodyFor([bob, carol]));
    await expectValidationError(res, "participants");
    expect(await listIds(bob)).toEqual(before);
  });

  it("answers 422 for fewer than 2 or more than 256 participants", async () => {
    await expectValidationError(await create(alice, { participants: [], keys: [] }), "participants");
    await expectValidationError(await create(alice, bodyFor([alice])), "participants");
    const tooMany = [alice.username, ...Array.from({ length: 256 }, (_, i) => `nobody_${i}`)];
    await expectValidationError(
      await create(alice, { participants: tooMany, keys: [wrap(alice.deviceId)] }),
      "participants",
    );
  });

  // Slow locally: the first event to 256 new inbox Durable Objects starts each of them on one thread.
  it("accepts 2 and 256 participants, one key per device", { timeout: 60_000 }, async () => {
    expect((await create(alice, bodyFor([alice, bob]))).status).toBe(201);
    const bulk = await insertUsersWithDevices(255);
    const last = bulk.at(-1)!;
    const lastKey = wrap(last.deviceId, 1024);
    const participants = [alice.username, ...bulk.map((u) => u.username)];
    const keys = [wrap(alice.deviceId), ...bulk.slice(0, -1).map((u) => wrap(u.deviceId)), lastKey];
    const res = await create(alice, { participants, keys });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body.participants).toHaveLength(256);
    const stored = await shardD1Of(body.conversationId)
      .prepare("select wrapped_key as k from epoch_keys where conversation_id = ? and epoch = 1 and device_id = ?")
      .bind(body.conversationId, last.deviceId)
      .first<{ k: ArrayBuffer }>();
    expect(b64(new Uint8Array(stored!.k))).toBe(lastKey.wrappedKey);
    expect((await getConversation(alice, body.conversationId)).participants).toHaveLength(256);
    const devices = await json(
      await call("GET", `/conversations/${body.conversationId}/devices`, { token: alice.token }),
    );
    expect(devices).toHaveLength(256);
  });

  it("answers 422 for a duplicate participant, also one differing only in case", async () => {
    for (const dup of [bob.username, bob.username.toUpperCase()]) {
      const res = await create(alice, { ...bodyFor([alice, bob]), participants: [alice.username, bob.username, dup] });
      const error = await expectValidationError(res, "participants.2");
      expect(JSON.stringify(error.details)).toContain(dup);
    }
  });

  it("answers 422 naming an unknown username", async () => {
    const ghost = uniqueName("ghost");
    const res = await create(alice, { ...bodyFor([alice, bob]), participants: [alice.username, bob.username, ghost] });
    const error = await expectValidationError(res, "participants.2");
    expect(error.message).toContain(ghost);
    expect(error.details?.find((d) => d.path === "participants.2")?.message).toContain(ghost);
  });

  it.each([
    ["a wrappedKey of 15 bytes", { wrappedKey: b64(randomBytes(15)) }, "keys.1.wrappedKey"],
    ["a wrappedKey of 1025 bytes", { wrappedKey: b64(randomBytes(1025)) }, "keys.1.wrappedKey"],
    ["a wrappedKey that is not base64", { wrappedKey: "*** not base64 ***" }, "keys.1.wrappedKey"],
    ["an unpadded wrappedKey", { wrappedKey: b64(randomBytes(17)).replace(/=+$/, "") }, "keys.1.wrappedKey"],
    ["a signature of 63 bytes", { signature: b64(randomBytes(63)) }, "keys.1.signature"],
    ["a signature of 65 bytes", { signature: b64(randomBytes(65)) }, "keys.1.signature"],
    ["a missing signature", { signature: undefined }, "keys.1.signature"],
    ["a deviceId of 0", { deviceId: 0 }, "keys.1.deviceId"],
    ["a deviceId as a string", { deviceId: "7" }, "keys.1.deviceId"],
  ])("answers 422 for %s, and creates nothing", async (_, change, path) => {
    const before = await listIds(bob);
    const keys = [wrap(alice.deviceId), { ...wrap(bob.deviceId), ...change }];
    await expectValidationError(await create(alice, bodyFor([alice, bob], { keys })), path);
    expect(await listIds(bob)).toEqual(before);
  });

  it("answers 422 for no keys or two keys for one device", async () => {
    await expectValidationError(await create(alice, bodyFor([alice, bob], { keys: [] })), "keys");
    const twice = [wrap(alice.deviceId), wrap(bob.deviceId), wrap(bob.deviceId)];
    await expectValidationError(await create(alice, bodyFor([alice, bob], { keys: twice })), "keys.2.deviceId");
  });

  it("answers 422 naming the devices when the keys do not cover exactly the participants' active devices", async () => {
    const before = await listIds(bob);
    const res = await create(alice, bodyFor([alice, bob], { keys: [wrap(alice.deviceId), wrap(carol.deviceId)] }));
    const error = await expectValidationError(res, "keys");
    expect(error.details).toEqual([
      { path: "keys", message: `missing device ids: ${bob.deviceId}` },
      { path: "keys", message: `unexpected device ids: ${carol.deviceId}` },
    ]);
    expect(await listIds(bob)).toEqual(before);
  });

  it("stores wrapped keys of 16 and 1024 bytes byte for byte", async () => {
    const [small, large] = [wrap(alice.deviceId, 16), wrap(bob.deviceId, 1024)];
    const res = await create(alice, bodyFor([alice, bob], { keys: [small, large] }));
    expect(res.status).toBe(201);
    const { conversationId } = await json(res);
    expect((await getConversation(alice, conversationId)).key.wrappedKey).toBe(small.wrappedKey);
    expect((await getConversation(bob, conversationId)).key.wrappedKey).toBe(large.wrappedKey);
  });
});

describe("GET /conversations", () => {
  it("lists only the caller's conversations, most recent activity first", async () => {
    const older = await createConversation(alice, bob);
    await sleep(5);
    const newer = await createConversation(alice, carol);
    const position = (ids: number[], id: number) => ids.indexOf(id);

    let ids = await listIds(alice);
    expect(position(ids, newer)).toBeLessThan(position(ids, older));
    expect(position(ids, older)).toBeGreaterThanOrEqual(0);
    expect(await listIds(bob)).toContain(older);
    expect(await listIds(bob)).not.toContain(newer);
    expect(await listIds(outsider)).not.toContain(older);

    await sleep(5);
    expect((await sendMessage(bob, older)).status).toBe(201);
    ids = await listIds(alice);
    expect(position(ids, older)).toBeLessThan(position(ids, newer));
    expect(ids[0]).toBe(older);
  });
});

describe("GET /conversations/{id}", () => {
  it("answers the same Conversation as the creation did, participants in the same order", async () => {
    // Registered one after the other, so the creator (listed first) has the higher userId.
    const earlier = await registerUser("earlier");
    const creator = await registerUser("creator");
    const res = await create(creator, bodyFor([creator, earlier, alice], { title: "Same" }));
    const created = await json(res);
    expect(await getConversation(creator, created.conversationId)).toEqual(created);
  });

  it("answers 403 with one body to a non-participant, whether the conversation exists or not", async () => {
    const existing = await createConversation(alice, bob);
    const missing = 2_000_000_000;
    const add = await addBody(alice, existing, outsider);
    const routes = (id: number): [string, string, unknown?][] => [
      ["GET", `/conversations/${id}`],
      ["GET", `/conversations/${id}/messages`],
      ["GET", `/conversations/${id}/devices`],
      ["GET", `/conversations/${id}/keys`],
      ["POST", `/conversations/${id}/epochs`, { epoch: 2, keys: add.keys }],
      ["POST", `/conversations/${id}/participants`, add],
      ["DELETE", `/conversations/${id}/participants/${bob.username}`],
    ];
    const answers = async (id: number) =>
      Promise.all(
        routes(id).map(async ([method, path, body]) => {
          const res = await call(method, path, { token: outsider.token, body });
          expect(res.status, `${method} ${path}`).toBe(403);
          expect((await errorOf(res.clone())).code).toBe("forbidden");
          return json(res);
        }),
      );
    expect(await answers(existing)).toEqual(await answers(missing));
    expect(await getConversation(bob, existing)).toMatchObject({ epoch: 1, participants: expect.any(Array) });
    expect((await getConversation(bob, existing)).participants).toHaveLength(2);
  });

  it.each(["abc", "0", "-1", "1.5", "1e3", "99999999999999999999"])(
    "answers 422, not 500, for the id %s",
    async (id) => {
      const add = { username: bob.username, epoch: 2, keys: [wrap(bob.deviceId)] };
      for (const [method, path, body] of [
        ["GET", `/conversations/${id}`],
        ["GET", `/conversations/${id}/messages`],
        ["GET", `/conversations/${id}/devices`],
        ["GET", `/conversations/${id}/keys`],
        ["POST", `/conversations/${id}/epochs`, { epoch: 2, keys: add.keys }],
        ["POST", `/conversations/${id}/participants`, add],
        ["DELETE", `/conversations/${id}/participants/${bob.username}`],
      ] as [string, string, unknown?][]) {
        const res = await call(method, path, { token: alice.token, body });
        expect(res.status, `${method} ${path}`).toBe(422);
        expect((await errorOf(res)).code).toBe("validation_failed");
      }
    },
  );
});
