// Shared by the client library's e2e files (client.test.ts, client-live.test.ts): accounts made
// through the library, a second device linked by approval, and subscriptions closed after each test.
import { randomBytes } from "node:crypto";
import { ParleyClient, type ParleyClientOptions, type SessionEnded, type Subscription } from "parley/client";
import { afterEach, expect } from "vitest";
import { baseUrl, sleep, uniqueName } from "./helpers.js";

export interface Account {
  client: ParleyClient;
  username: string;
  password: string;
  userId: number;
  deviceId: number;
  ended: SessionEnded[];
}

/** Every subscription passed to the returned function is closed after each test (call at a file's top level). */
export function trackSubscriptions(): <T extends Subscription>(s: T) => T {
  const subscriptions: Subscription[] = [];
  afterEach(() => {
    for (const s of subscriptions.splice(0)) s.close();
  });
  return (s) => {
    subscriptions.push(s);
    return s;
  };
}

export function newClient(options: Partial<ParleyClientOptions> = {}, ended: SessionEnded[] = []): ParleyClient {
  return new ParleyClient({
    baseUrl: baseUrl(),
    onSessionEnded: (e) => ended.push(e),
    ...options,
  });
}

export async function account(prefix: string, options: Partial<ParleyClientOptions> = {}): Promise<Account> {
  const ended: SessionEnded[] = [];
  const client = newClient(options, ended);
  const username = uniqueName(prefix);
  const password = `pw-${randomBytes(9).toString("base64")}`;
  const status = await client.register(username, password);
  expect(status).toMatchObject({ username, status: "active", comparisonCode: null });
  return { client, username, password, userId: status.userId, deviceId: status.deviceId, ended };
}

/** A second device of `owner`: logs in (pending), is approved by `owner` after comparing codes, is provisioned. */
export async function linkDevice(owner: Account, options: Partial<ParleyClientOptions> = {}): Promise<Account> {
  const ended: SessionEnded[] = [];
  const client = newClient(options, ended);
  const status = await client.login(owner.username, owner.password, { deviceName: "laptop" });
  expect(status.status).toBe("pending");
  const [pending] = await owner.client.pendingDevices();
  expect(pending).toMatchObject({ deviceId: status.deviceId, name: "laptop", comparisonCode: status.comparisonCode });
  await owner.client.approveDevice(status.deviceId, { comparisonCode: status.comparisonCode! });
  expect(await client.waitForApproval({ pollIntervalMs: 200 })).toMatchObject({ status: "active" });
  return { ...owner, client, deviceId: status.deviceId, ended };
}

/** Resolves once `predicate` holds, polling (the library delivers through callbacks). */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
