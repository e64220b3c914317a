import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import {
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

let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let outsider: TestUser;

beforeAll(async () => {
  [alice, bob, carol, outsider] = await registerUsers("alice", "Bob", "carol", "outsider");
});

const key = (bytes = 48) => b64(randomBytes(bytes));
const entry = (user: { username: string }, encryptedKey = key()) => ({ username: user.username, encryptedKey });
const create = (creator: TestUser, body: unknown) => call("POST", "/conversations", { token: creator.token, body });
const listIds = async (user: TestUser): Promise<number[]> =>
  (await json(await call("GET", "/conversations", { token: user.token }))).map((c: any) => c.conversationId);

async function expectValidationError(res: Response, path: string) {
  expect(res.status).toBe(422);
  const error = await errorOf(res);
  expect(error.code).toBe("validation_failed");
  expect(error.details?.map((d) => d.path)).toContain(path);
  return error;
}

/** Users straight into D1 (no password hashing): for the 256-participant bound only. */
async function insertUsers(count: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `${`${uniqueName("bulk")}`.slice(0, 26)}_${i}`);
  const now = new Date().toISOString();
  const insert = env.DB.prepare(
    "insert into users (username, password_hash, password_salt, password_algorithm, password_iterations, public_key, created_at) values (?, ?, ?, 'PBKDF2-SHA256', 100000, ?, ?)",
  );
  await env.DB.batch(names.map((n) => insert.bind(n, randomBytes(32), randomBytes(16), randomBytes(32), now)));
  return names;
}

describe("POST /conversations", () => {
  it("answers 201 with the Conversation and the creator's own key", async () => {
    const keys = { alice: key(), bob: key(), carol: key() };
    // Bob is named in another case: the answer lists usernames as registered.
    const participants = [
      entry(alice, keys.alice),
      entry({ username: bob.username.toUpperCase() }, keys.bob),
      entry(carol, keys.carol),
    ];
    const res = await create(alice, { title: "Project", participants });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body).toEqual({
      conversationId: expect.any(Number),
      title: "Project",
      createdAt: expect.stringMatching(ISO_MS),
      lastMessageId: null,
      participants: expect.any(Array),
      encryptedKey: keys.alice,
    });
    expect(Number.isInteger(body.conversationId) && body.conversationId > 0).toBe(true);
    const members = [...body.participants].sort((a: any, b: any) => a.userId - b.userId);
    const expected = [alice, bob, carol].sort((a, b) => a.userId - b.userId);
    expect(members).toEqual(
      expected.map((u) => ({ userId: u.userId, username: u.username, joinedAt: expect.stringMatching(ISO_MS) })),
    );
  });

  it("gives each participant back only its own encryptedKey", async () => {
    const keys = new Map([alice, bob, carol].map((u) => [u.username, key()]));
    const res = await create(alice, { participants: [alice, bob, carol].map((u) => entry(u, keys.get(u.username))) });
    expect(res.status).toBe(201);
    const { conversationId } = await json(res);
    for (const user of [alice, bob, carol]) {
      const own = keys.get(user.username)!;
      const others = [...keys.values()].filter((k) => k !== own);
      const single = await getConversation(user, conversationId);
      expect(single.encryptedKey).toBe(own);
      expect(single.title).toBeNull();
      const listed = (await json(await call("GET", "/conversations", { token: user.token }))).find(
        (c: any) => c.conversationId === conversationId,
      );
      expect(listed).toEqual(single);
      for (const other of others) expect(JSON.stringify(single)).not.toContain(other);
    }
  });

  it("answers 422 when the participants do not include the creator, and creates nothing", async () => {
    const before = await listIds(bob);
    const res = await create(alice, { participants: [entry(bob), entry(carol)] });
    await expectValidationError(res, "participants");
    expect(await listIds(bob)).toEqual(before);
  });

  it("answers 422 for fewer than 2 or more than 256 participants", async () => {
    await expectValidationError(await create(alice, { participants: [] }), "participants");
    await expectValidationError(await create(alice, { participants: [entry(alice)] }), "participants");
    const tooMany = [entry(alice), ...Array.from({ length: 256 }, (_, i) => entry({ username: `nobody_${i}` }))];
    await expectValidationError(await create(alice, { participants: tooMany }), "participants");
  });

  // Slow locally: the first event to 256 new inbox Durable Objects starts each of them on one thread.
  it("accepts 2 and 256 participants", { timeout: 30_000 }, async () => {
    expect((await create(alice, { participants: [entry(alice), entry(bob)] })).status).toBe(201);
    const names = await insertUsers(255);
    const lastKey = key();
    const participants = [
      entry(alice),
      ...names.slice(0, -1).map((username) => entry({ username })),
      entry({ username: names.at(-1)! }, lastKey),
    ];
    const res = await create(alice, { participants });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body.participants).toHaveLength(256);
    const stored = await env.DB.prepare(
      "select p.encrypted_key as k from participants p join users u on u.id = p.user_id where p.conversation_id = ? and u.username = ?",
    )
      .bind(body.conversationId, names.at(-1)!)
      .first<{ k: ArrayBuffer }>();
    expect(b64(new Uint8Array(stored!.k))).toBe(lastKey);
    expect((await getConversation(alice, body.conversationId)).participants).toHaveLength(256);
  });

  it("answers 422 for a duplicate participant, also one differing only in case", async () => {
    for (const dup of [bob.username, bob.username.toUpperCase()]) {
      const res = await create(alice, { participants: [entry(alice), entry(bob), entry({ username: dup })] });
      const error = await expectValidationError(res, "participants.2.username");
      expect(JSON.stringify(error.details)).toContain(dup);
    }
  });

  it("answers 422 naming an unknown username", async () => {
    const ghost = uniqueName("ghost");
    const res = await create(alice, { participants: [entry(alice), entry(bob), entry({ username: ghost })] });
    const error = await expectValidationError(res, "participants.2.username");
    expect(error.message).toContain(ghost);
    expect(error.details?.find((d) => d.path === "participants.2.username")?.message).toContain(ghost);
  });

  it.each([
    ["15 bytes", b64(randomBytes(15))],
    ["1025 bytes", b64(randomBytes(1025))],
    ["not base64", "*** not base64 ***"],
    ["unpadded", b64(randomBytes(17)).replace(/=+$/, "")],
  ])("answers 422 for an encryptedKey of %s", async (_, bad) => {
    const res = await create(alice, { participants: [entry(alice), entry(bob, bad)] });
    await expectValidationError(res, "participants.1.encryptedKey");
  });

  it("stores encryptedKeys of 16 and 1024 bytes byte for byte", async () => {
    const [small, large] = [key(16), key(1024)];
    const res = await create(alice, { participants: [entry(alice, small), entry(bob, large)] });
    expect(res.status).toBe(201);
    const { conversationId } = await json(res);
    expect((await getConversation(alice, conversationId)).encryptedKey).toBe(small);
    expect((await getConversation(bob, conversationId)).encryptedKey).toBe(large);
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
    const res = await create(creator, { title: "Same", participants: [entry(creator), entry(earlier), entry(alice)] });
    const created = await json(res);
    expect(await getConversation(creator, created.conversationId)).toEqual(created);
  });

  it("answers 403 with one body to a non-participant, whether the conversation exists or not", async () => {
    const existing = await createConversation(alice, bob);
    const missing = 2_000_000_000;
    const routes = (id: number): [string, string, unknown?][] => [
      ["GET", `/conversations/${id}`],
      ["GET", `/conversations/${id}/messages`],
      ["POST", `/conversations/${id}/participants`, entry(outsider)],
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
    expect((await getConversation(bob, existing)).participants).toHaveLength(2);
  });

  it.each(["abc", "0", "-1", "1.5", "1e3", "99999999999999999999"])(
    "answers 422, not 500, for the id %s",
    async (id) => {
      for (const [method, path, body] of [
        ["GET", `/conversations/${id}`],
        ["GET", `/conversations/${id}/messages`],
        ["POST", `/conversations/${id}/participants`, entry(bob)],
        ["DELETE", `/conversations/${id}/participants/${bob.username}`],
      ] as [string, string, unknown?][]) {
        const res = await call(method, path, { token: alice.token, body });
        expect(res.status, `${method} ${path}`).toBe(422);
        expect((await errorOf(res)).code).toBe("validation_failed");
      }
    },
  );
});
