import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { app } from "../../src/app";
import { b64, createConversation, messageBody, randomBytes, registerUser, uniqueName } from "../helpers/api";
import { snapshot } from "../helpers/db";
import { failingD1 } from "../helpers/faults";

/** Sends a request to the app with a D1 binding whose `failAt`th statement fails. */
async function callWithFault(failAt: number, method: string, path: string, token: string | undefined, body?: unknown) {
  const fault = failingD1(env.DB, failAt);
  const headers = new Headers({ "Content-Type": "application/json", "CF-Connecting-IP": `10.9.${failAt}.1` });
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
 * failed attempt must answer 500 in the error shape, leak no SQL, and leave the database as it was.
 */
async function expectAtomic(method: string, path: string, token: string | undefined, body: () => unknown) {
  let attempts = 0;
  for (let failAt = 1; ; failAt++) {
    const before = await snapshot();
    const { res, text, reached } = await callWithFault(failAt, method, path, token, body());
    if (!reached) return { attempts, final: res };
    attempts++;
    expect(res.status, `statement ${failAt}`).toBe(500);
    expect(JSON.parse(text)).toEqual({ error: { code: "internal", message: "internal server error" } });
    expect(text).not.toMatch(/select|insert|update|fault_injected/i);
    expect(await snapshot(), `state after failing statement ${failAt}`).toEqual(before);
  }
}

describe("the database failing mid-request", () => {
  it("POST /messages stores all of a message or none of it", async () => {
    const alice = await registerUser("flt");
    const bob = await registerUser("flt");
    const id = await createConversation(alice, bob);
    const { attempts, final } = await expectAtomic("POST", "/messages", alice.token, () =>
      messageBody(id, { clientMessageId: "same" }),
    );
    expect(attempts).toBeGreaterThanOrEqual(2); // the insert and the conversation update, at least
    expect(final.status).toBe(201);
    expect((await snapshot()).inconsistent).toEqual([]);
  });

  it("POST /conversations creates the conversation with all its participants or nothing", async () => {
    const users = await Promise.all(Array.from({ length: 3 }, () => registerUser("flt")));
    const participants = users.map((u) => ({ username: u.username, encryptedKey: b64(randomBytes(32)) }));
    const { attempts, final } = await expectAtomic("POST", "/conversations", users[0]!.token, () => ({ participants }));
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(final.status).toBe(201);
  });

  it("register, add and remove participant fail cleanly too", async () => {
    const register = await expectAtomic("POST", "/auth/register", undefined, () => ({
      username: uniqueName("flt"),
      password: "long enough",
      publicKey: b64(randomBytes(32)),
    }));
    expect(register.final.status).toBe(201);
    const alice = await registerUser("flt");
    const bob = await registerUser("flt");
    const carol = await registerUser("flt");
    const id = await createConversation(alice, bob);
    const added = await expectAtomic("POST", `/conversations/${id}/participants`, alice.token, () => ({
      username: carol.username,
      encryptedKey: b64(randomBytes(32)),
    }));
    expect(added.final.status).toBe(201);
    const removed = await expectAtomic(
      "DELETE",
      `/conversations/${id}/participants/${carol.username}`,
      alice.token,
      () => undefined,
    );
    expect(removed.final.status).toBe(204);
  });
});
