import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { shardBindings } from "../../src/db/shards";
import {
  activeDeviceIds,
  addBody,
  approve,
  approveBody,
  call,
  conversationDeviceIds,
  createConversation,
  getConversation,
  json,
  loginPendingDevice,
  makeDeviceKeys,
  messageBody,
  registerUser,
  registrationBody,
  sendMessage,
  type TestUser,
  uniqueName,
  wrapFor,
} from "../helpers/api";
import { directoryD1 } from "../helpers/databases";
import { sharedFault } from "../helpers/faults";
import { dump, inconsistencies } from "../helpers/state";

/**
 * Reads of who is online, and of which devices a push could reach, decide only where events go,
 * after the answer (a failure costs an event, never the write): they are not this test's subject.
 */
const SPARED = /inbox_presence|join "push_subscriptions"/;

/** Every database of the environment, by binding name: the directory and each shard. */
function bindings(): [string, D1Database][] {
  const shards = [...shardBindings(env)].sort(([a], [b]) => a - b);
  return [["DIRECTORY", directoryD1()], ...shards.map(([index, d1]): [string, D1Database] => [`SHARD_${index}`, d1])];
}

/**
 * Sends a request to the app with every D1 binding (the directory and each shard) sharing one fault:
 * the `failAt`th statement the request sends to any of them fails.
 */
async function callWithFault(
  failAt: number,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
  spare = SPARED,
) {
  const fault = sharedFault(failAt, spare);
  const quiet = vi.spyOn(console, "error").mockImplementation(() => {}); // the expected "unhandled error" lines
  onTestFinished(() => quiet.mockRestore());
  const res = await call(method, path, {
    ...(token ? { token } : {}),
    ...(body === undefined ? {} : { body }),
    env: {
      ...Object.fromEntries(bindings().map(([name, d1]) => [name, fault.wrap(d1)])),
      // One attempt per statement of every database adds up to more requests than a rate limit allows
      // (per address on register and login, per user on creating and adding): the limits must not be what refuses.
      RATE_LIMITS: "off",
    },
  });
  return { res, text: await res.text(), reached: fault.executed() >= failAt };
}

interface Atomicity {
  spare?: RegExp;
  /**
   * Tables (`<database>.<table>`, `*` for any shard) that an earlier step of the request may leave
   * written when a later one fails, by design: the directory's shard index (a superset) and a
   * shard's account mirror (copies, copied before a user joins there): src/db/user-conversations.ts.
   */
  ahead?: string[];
  /**
   * The request writes every shard first, then the directory (src/db/lifecycle.ts): when the
   * directory's step fails, the shards are ahead. Each shard must then already be exactly as the
   * successful request leaves it (its step is idempotent, and the retry completes the change).
   */
  shardsFirst?: boolean;
}

type Dump = Awaited<ReturnType<typeof dump>>;

/** The part of a dump that is database `database`'s, without the tables that may be ahead. */
function only(state: Dump, database: string, ahead: string[] = []): Dump {
  const skipped = ahead.map((t) => new RegExp(`^${t.replace(".", "\\.").replace("*", "\\d+")}$`));
  return Object.fromEntries(
    Object.entries(state).filter(([table]) => table.startsWith(`${database}.`) && !skipped.some((r) => r.test(table))),
  );
}

/**
 * Fails statement 1, 2, 3, … of one request (whichever database it goes to) until the request no
 * longer reaches the fault: every failed attempt must answer 500 in the error shape, leak no SQL, and
 * leave every row of every table of every database exactly as it was: the directory always (it is
 * the last to say that something happened), each shard too, unless `shardsFirst` (then each shard is
 * as it was or as the successful request leaves it: all of its step or none). The last attempt runs
 * with no fault and is returned.
 */
async function expectAtomic(
  method: string,
  path: string,
  token: string | undefined,
  body: () => unknown,
  { spare = SPARED, ahead = [], shardsFirst = false }: Atomicity = {},
) {
  const databases = bindings().map(([name]) => (name === "DIRECTORY" ? "directory" : `shard${name.slice(6)}`));
  const aheadOf: { failAt: number; database: string; state: Dump }[] = [];
  let attempts = 0;
  for (let failAt = 1; ; failAt++) {
    const before = await dump();
    const { res, text, reached } = await callWithFault(failAt, method, path, token, body(), spare);
    if (!reached) {
      const final = await dump();
      for (const { failAt, database, state } of aheadOf) {
        expect(changes(state, only(final, database, ahead)), `${database} after failing statement ${failAt}`).toEqual(
          {},
        );
      }
      return { attempts, final: res, text };
    }
    attempts++;
    expect(res.status, `statement ${failAt}`).toBe(500);
    expect(JSON.parse(text)).toEqual({ error: { code: "internal", message: "internal server error" } });
    expect(text).not.toMatch(/select|insert|update|delete|fault_injected/i);
    const after = await dump();
    for (const database of databases) {
      const was = only(before, database, ahead);
      const now = only(after, database, ahead);
      const diff = changes(was, now);
      if (shardsFirst && database !== "directory" && Object.keys(diff).length > 0) {
        aheadOf.push({ failAt, database, state: now });
      } else {
        expect(diff, `${database} after failing statement ${failAt}`).toEqual({});
      }
    }
  }
}

/** The rows that differ between two dumps, by table: readable where a whole-database diff is not. */
function changes(before: Dump, after: Dump) {
  const diff: Record<string, { removed: unknown[]; added: unknown[] }> = {};
  for (const table of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const was = (before[table] ?? []).map((r) => JSON.stringify(r));
    const now = (after[table] ?? []).map((r) => JSON.stringify(r));
    const removed = was.filter((r) => !now.includes(r));
    const added = now.filter((r) => !was.includes(r));
    if (removed.length || added.length) diff[table] = { removed, added };
  }
  return diff;
}

/** What creating a conversation or adding someone writes before the shard's commit (see `Atomicity.ahead`). */
const ADMISSION = ["directory.user_shards", "shard*.devices", "shard*.sessions", "shard*.account_settings"];
/** A consent lost after the commit is answered 201 and logged (test/faults/shards.test.ts): not this test's subject. */
const SPARED_WITH_CONSENTS = new RegExp(`${SPARED.source}|insert into "consents"`);

const PASSWORD = "correct horse battery";

/** A second, approved device of `user` (with keys for every conversation it is in). */
async function secondDevice(user: TestUser): Promise<TestUser> {
  const pending = await loginPendingDevice(user, "second");
  const res = await approve(user, pending);
  if (res.status !== 200) throw new Error(`approve failed: ${res.status} ${await res.text()}`);
  return pending;
}

describe("the database failing mid-request", () => {
  it("POST /messages stores all of a message or none of it", async () => {
    const [alice, bob] = await Promise.all([registerUser("flt"), registerUser("flt")]);
    const id = await createConversation(alice, bob);
    const { attempts, final } = await expectAtomic("POST", "/messages", alice.token, () =>
      messageBody(id, { clientMessageId: "same" }),
    );
    expect(attempts).toBeGreaterThanOrEqual(1); // the one batch (insert, seq update, recipients)
    expect(final.status).toBe(201);
    expect(await inconsistencies()).toEqual([]);
  });

  it("POST /conversations creates the conversation, its participants, epoch 1 and its keys, or nothing", async () => {
    const users = await Promise.all(Array.from({ length: 3 }, () => registerUser("flt")));
    const devices = await activeDeviceIds(users[0]!, ...users);
    const keys = await Promise.all(devices.map((id) => wrapFor(users[0]!, id)));
    const body = { participants: users.map((u) => u.username), keys };
    const { attempts, final } = await expectAtomic("POST", "/conversations", users[0]!.token, () => body, {
      ahead: ADMISSION,
      spare: SPARED_WITH_CONSENTS,
    });
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(final.status).toBe(201);
    expect(await inconsistencies()).toEqual([]);
  });

  it("POST /auth/register creates the account with its first device, or nothing", async () => {
    const { body } = await registrationBody(uniqueName("flt"), PASSWORD);
    const { attempts, final, text } = await expectAtomic("POST", "/auth/register", undefined, () => body);
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(final.status).toBe(201);
    const login = await call("POST", "/auth/login", {
      body: { username: body.username, password: PASSWORD, deviceId: JSON.parse(text).deviceId },
    });
    expect(login.status).toBe(200);
  });

  it("POST /auth/login on a known device opens the session with its refresh token, or nothing", async () => {
    const alice = await registerUser("flt");
    const { attempts, final, text } = await expectAtomic("POST", "/auth/login", undefined, () => ({
      username: alice.username,
      password: PASSWORD,
      deviceId: alice.deviceId,
    }));
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(final.status).toBe(200);
    const session = JSON.parse(text);
    expect((await call("GET", "/users/me", { token: session.accessToken })).status).toBe(200);
    expect((await call("POST", "/auth/refresh", { body: { refreshToken: session.refreshToken } })).status).toBe(200);
  });

  it("POST /auth/login as a new device creates the pending device with its session, or nothing", async () => {
    const alice = await registerUser("flt");
    const device = await makeDeviceKeys("laptop");
    const { attempts, final, text } = await expectAtomic("POST", "/auth/login", undefined, () => ({
      username: alice.username,
      password: PASSWORD,
      device: { name: device.name, identityKey: device.identityKey, signingKey: device.signingKey },
    }));
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(final.status).toBe(200);
    expect(JSON.parse(text).deviceStatus).toBe("pending");
    const listed = await json(await call("GET", "/devices", { token: alice.token }));
    expect(listed.map((d: any) => d.status)).toEqual(["active", "pending"]);
  });

  it("POST /auth/refresh spends the old refresh token and stores the new one, or neither", async () => {
    const alice = await registerUser("flt");
    const { attempts, final, text } = await expectAtomic("POST", "/auth/refresh", undefined, () => ({
      refreshToken: alice.refreshToken,
    }));
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(final.status).toBe(200);
    const next = JSON.parse(text);
    expect((await call("POST", "/auth/refresh", { body: { refreshToken: next.refreshToken } })).status).toBe(200);
  });

  it("an epoch commit stores the epoch, every wrapped key and the new current epoch, or nothing", async () => {
    const [alice, bob] = await Promise.all([registerUser("flt"), registerUser("flt")]);
    const id = await createConversation(alice, bob);
    const devices = await conversationDeviceIds(alice, id);
    const body = { epoch: 2, keys: await Promise.all(devices.map((d) => wrapFor(alice, d))) };
    const { attempts, final } = await expectAtomic("POST", `/conversations/${id}/epochs`, alice.token, () => body);
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(final.status).toBe(201);
    expect((await getConversation(bob, id)).epoch).toBe(2);
    expect(await inconsistencies()).toEqual([]);
  });

  it("adding a participant (an epoch commit) and removing one fail cleanly too", async () => {
    const [alice, bob, carol] = await Promise.all([registerUser("flt"), registerUser("flt"), registerUser("flt")]);
    const id = await createConversation(alice, bob);
    const body = await addBody(alice, id, carol);
    const added = await expectAtomic("POST", `/conversations/${id}/participants`, alice.token, () => body, {
      ahead: ADMISSION,
      spare: SPARED_WITH_CONSENTS,
    });
    expect(added.attempts).toBeGreaterThanOrEqual(2);
    expect(added.final.status).toBe(201);
    expect(await inconsistencies()).toEqual([]);
    const removed = await expectAtomic(
      "DELETE",
      `/conversations/${id}/participants/${carol.username}`,
      alice.token,
      () => undefined,
    );
    expect(removed.attempts).toBeGreaterThanOrEqual(1);
    expect(removed.final.status).toBe(204);
    expect((await getConversation(alice, id)).rotationNeeded).toBe(true);
    expect(await inconsistencies()).toEqual([]);
  });

  it("approving a device stores its signature, provisioning and keys, or nothing", async () => {
    const [alice, bob] = await Promise.all([registerUser("flt"), registerUser("flt")]);
    const id = await createConversation(alice, bob);
    const pending = await loginPendingDevice(alice);
    const body = await approveBody(alice, pending);
    const { attempts, final } = await expectAtomic(
      "POST",
      `/devices/${pending.deviceId}/approve`,
      alice.token,
      () => body,
      { shardsFirst: true },
    );
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(final.status).toBe(200);
    expect((await getConversation(pending, id)).key).not.toBeNull();
    expect(await inconsistencies()).toEqual([]);
  });

  it("revoking a device ends its sessions, drops its keys and flags rotation, or does nothing", async () => {
    const [alice, bob] = await Promise.all([registerUser("flt"), registerUser("flt")]);
    const id = await createConversation(alice, bob);
    const laptop = await secondDevice(alice);
    const { attempts, final } = await expectAtomic(
      "DELETE",
      `/devices/${laptop.deviceId}`,
      alice.token,
      () => ({ password: PASSWORD }),
      { shardsFirst: true },
    );
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(final.status).toBe(204);
    expect((await call("GET", "/users/me", { token: laptop.token })).status).toBe(401);
    expect((await getConversation(alice, id)).rotationNeeded).toBe(true);
    expect(await inconsistencies()).toEqual([]);
  });

  it("deleting an account removes it everywhere and tombstones its messages, or does nothing", async () => {
    const [alice, bob] = await Promise.all([registerUser("flt"), registerUser("flt")]);
    const id = await createConversation(alice, bob);
    expect((await sendMessage(bob, id)).status).toBe(201);
    // The attachments' deletion follows the account's batch and is finished by the cleanup job if it
    // fails (test/attachments), so its statements are spared here.
    const { attempts, final } = await expectAtomic("DELETE", "/users/me", bob.token, () => ({ password: PASSWORD }), {
      spare: new RegExp(`${SPARED.source}|"attachments"`),
      shardsFirst: true,
    });
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(final.status).toBe(204);
    expect((await call("GET", `/users/${bob.username}`, { token: alice.token })).status).toBe(404);
    const conversation = await getConversation(alice, id);
    expect(conversation.participants.map((p: any) => p.userId)).toEqual([alice.userId]);
    expect(conversation.rotationNeeded).toBe(true);
    expect(await inconsistencies()).toEqual([]);
  });
});
