import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { app } from "../../src/app";
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
import { failingD1 } from "../helpers/faults";
import { dump, inconsistencies } from "../helpers/state";

let address = 0;

/**
 * Reads of who is online decide only where events go (a failure costs an event, never the write):
 * they are not this test's subject.
 */
const SPARED = /inbox_presence/;

/** Sends a request to the app with a D1 binding whose `failAt`th statement fails. */
async function callWithFault(
  failAt: number,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
  spare = SPARED,
) {
  const fault = failingD1(env.DB, failAt, spare);
  address += 1;
  const headers = new Headers({
    "Content-Type": "application/json",
    // Its own address each time: the per-IP limit on register and login must not be what refuses.
    "CF-Connecting-IP": `10.9.${address >> 8}.${address & 255}`,
  });
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const ctx = createExecutionContext();
  const quiet = vi.spyOn(console, "error").mockImplementation(() => {}); // the expected "unhandled error" lines
  onTestFinished(() => quiet.mockRestore());
  const res = await app.fetch(
    new Request(`http://parley.test${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
    { ...env, DB: fault.db },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return { res, text: await res.text(), reached: fault.executed() >= failAt };
}

/**
 * Fails statement 1, 2, 3, … of one request until the request no longer reaches the fault: every
 * failed attempt must answer 500 in the error shape, leak no SQL, and leave every row of every
 * table exactly as it was. The last attempt runs with no fault and is returned.
 */
async function expectAtomic(
  method: string,
  path: string,
  token: string | undefined,
  body: () => unknown,
  spare = SPARED,
) {
  let attempts = 0;
  for (let failAt = 1; ; failAt++) {
    const before = await dump();
    const { res, text, reached } = await callWithFault(failAt, method, path, token, body(), spare);
    if (!reached) return { attempts, final: res, text };
    attempts++;
    expect(res.status, `statement ${failAt}`).toBe(500);
    expect(JSON.parse(text)).toEqual({ error: { code: "internal", message: "internal server error" } });
    expect(text).not.toMatch(/select|insert|update|delete|fault_injected/i);
    expect(changes(before, await dump()), `state after failing statement ${failAt}`).toEqual({});
  }
}

type Dump = Awaited<ReturnType<typeof dump>>;

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
    const { attempts, final } = await expectAtomic("POST", "/conversations", users[0]!.token, () => body);
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
    const added = await expectAtomic("POST", `/conversations/${id}/participants`, alice.token, () => body);
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
    const { attempts, final } = await expectAtomic("DELETE", `/devices/${laptop.deviceId}`, alice.token, () => ({
      password: PASSWORD,
    }));
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
    const { attempts, final } = await expectAtomic(
      "DELETE",
      "/users/me",
      bob.token,
      () => ({ password: PASSWORD }),
      /inbox_presence|"attachments"/,
    );
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(final.status).toBe(204);
    expect((await call("GET", `/users/${bob.username}`, { token: alice.token })).status).toBe(404);
    const conversation = await getConversation(alice, id);
    expect(conversation.participants.map((p: any) => p.userId)).toEqual([alice.userId]);
    expect(conversation.rotationNeeded).toBe(true);
    expect(await inconsistencies()).toEqual([]);
  });
});
