import { beforeAll, describe, expect, it } from "vitest";
import {
  approve,
  call,
  errorOf,
  ISO_MS,
  json,
  loginPendingDevice,
  registerUser,
  registerUsers,
  type TestUser,
  uniqueName,
} from "../helpers/api";
import { signToken, TEST_JWT_SECRET, unsignedToken } from "../helpers/tokens";

let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  [alice, bob] = await registerUsers("Alice", "bob");
});

/** The Device a lookup shows for a user's registered (first) device. */
const deviceOf = (user: TestUser) => ({
  deviceId: user.deviceId,
  userId: user.userId,
  identityKey: user.device.identityKey,
  signingKey: user.device.signingKey,
  signature: expect.any(String),
  createdAt: expect.stringMatching(ISO_MS),
});

describe("GET /users/me", () => {
  it("answers the caller's own account: account key and settings", async () => {
    const res = await call("GET", "/users/me", { token: alice.token });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({
      userId: alice.userId,
      username: alice.username,
      accountKey: alice.accountKey,
      createdAt: expect.stringMatching(ISO_MS),
      settings: { readReceipts: true },
    });
    expect(Math.abs(Date.parse(body.createdAt) - Date.now())).toBeLessThan(60_000);
  });

  it("answers a pending device of the same user the same account", async () => {
    const user = await registerUser("me");
    const phone = await loginPendingDevice(user);
    const mine = await json(await call("GET", "/users/me", { token: user.token }));
    expect(await json(await call("GET", "/users/me", { token: phone.token }))).toEqual(mine);
  });
});

describe("PUT /users/me/settings", () => {
  it("changes readReceipts and answers the account as GET /users/me then shows it", async () => {
    const user = await registerUser("settings");
    const res = await call("PUT", "/users/me/settings", { token: user.token, body: { readReceipts: false } });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ userId: user.userId, accountKey: user.accountKey, settings: { readReceipts: false } });
    expect(await json(await call("GET", "/users/me", { token: user.token }))).toEqual(body);
    // An empty change changes nothing.
    const same = await call("PUT", "/users/me/settings", { token: user.token, body: {} });
    expect((await json(same)).settings).toEqual({ readReceipts: false });
  });

  it.each([
    ["a string", { readReceipts: "no" }],
    ["a number", { readReceipts: 0 }],
    ["null", { readReceipts: null }],
  ])("answers 422 for readReceipts as %s and keeps the setting", async (_, body) => {
    const res = await call("PUT", "/users/me/settings", { token: alice.token, body });
    expect(res.status).toBe(422);
    const error = await errorOf(res);
    expect(error.code).toBe("validation_failed");
    expect(error.details?.map((d) => d.path)).toContain("readReceipts");
    expect((await json(await call("GET", "/users/me", { token: alice.token }))).settings).toEqual({
      readReceipts: true,
    });
  });
});

describe("PUT /users/me/public-key (v1)", () => {
  it("is gone in v2: keys are fixed per device, a new key is a new device", async () => {
    const res = await call("PUT", "/users/me/public-key", {
      token: alice.token,
      body: { publicKey: alice.accountKey },
    });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("not_found");
  });
});

describe("GET /users/{username}", () => {
  it("answers the user's id, username, account key and active devices, and nothing else", async () => {
    const res = await call("GET", `/users/${alice.username}`, { token: bob.token });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({
      userId: alice.userId,
      username: alice.username,
      accountKey: alice.accountKey,
      devices: [deviceOf(alice)],
    });
    // Nothing of the account itself: no settings, no creation time, no device names or statuses.
    expect(Object.keys(body.devices[0]).sort()).toEqual(
      ["createdAt", "deviceId", "identityKey", "signature", "signingKey", "userId"].sort(),
    );
  });

  it("lists a pending device only once it is approved, and a revoked device no more", async () => {
    const user = await registerUser("lookup");
    const phone = await loginPendingDevice(user, "phone");
    const lookup = async () => json(await call("GET", `/users/${user.username}`, { token: bob.token }));
    expect((await lookup()).devices.map((d: { deviceId: number }) => d.deviceId)).toEqual([user.deviceId]);
    expect((await approve(user, phone)).status).toBe(200);
    const approved = await lookup();
    expect(approved.devices.map((d: { deviceId: number }) => d.deviceId)).toEqual([user.deviceId, phone.deviceId]);
    expect(approved.devices[1]).toMatchObject({
      identityKey: phone.device.identityKey,
      signingKey: phone.device.signingKey,
      signature: expect.any(String),
    });
    const revoked = await call("DELETE", `/devices/${phone.deviceId}`, {
      token: user.token,
      body: { password: user.password },
    });
    expect(revoked.status).toBe(204);
    expect((await lookup()).devices.map((d: { deviceId: number }) => d.deviceId)).toEqual([user.deviceId]);
  });

  it("finds the user without regard to case and answers the username as registered", async () => {
    for (const name of [alice.username.toUpperCase(), alice.username.toLowerCase()]) {
      const res = await call("GET", `/users/${name}`, { token: bob.token });
      expect(res.status).toBe(200);
      expect((await json(res)).username).toBe(alice.username);
    }
  });

  it("answers 404 for an unknown or impossible username", async () => {
    for (const name of [uniqueName("ghost"), "x", encodeURIComponent("jos\u00e9")]) {
      const res = await call("GET", `/users/${name}`, { token: bob.token });
      expect(res.status, name).toBe(404);
      expect((await errorOf(res)).code).toBe("not_found");
    }
  });
});

describe("token checks on protected routes", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const expectRefused = async (res: Response) => {
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
    expect((await errorOf(res)).code).toBe("unauthorized");
  };

  it("accepts a token made like the server's (the control for the forged ones below)", async () => {
    const res = await call("GET", "/users/me", { token: await signToken(alice) });
    expect(res.status).toBe(200);
    expect((await json(res)).userId).toBe(alice.userId);
  });

  it("refuses a request without an Authorization header on every protected route", async () => {
    const routes: [string, string, unknown?][] = [
      ["GET", "/users/me"],
      ["PUT", "/users/me/settings", { readReceipts: false }],
      ["DELETE", "/users/me", { password: "whatever it is" }],
      ["GET", `/users/${alice.username}`],
      ["GET", "/users/me/blocked"],
      ["PUT", `/users/me/blocked/${bob.username}`],
      ["DELETE", `/users/me/blocked/${bob.username}`],
      ["POST", "/auth/logout"],
      ["GET", "/auth/sessions"],
      ["DELETE", "/auth/sessions/1", { password: "whatever it is" }],
      ["POST", "/auth/password", { currentPassword: "a", newPassword: "long enough" }],
      ["GET", "/devices"],
      ["POST", "/devices/1/approve", {}],
      ["GET", "/devices/1/provisioning"],
      ["DELETE", "/devices/1"],
      ["GET", "/conversations"],
      ["POST", "/conversations", { participants: [] }],
      ["GET", "/conversations/1"],
      ["GET", "/conversations/1/messages"],
      ["GET", "/conversations/1/devices"],
      ["GET", "/conversations/1/keys"],
      ["POST", "/conversations/1/epochs", { epoch: 2, keys: [] }],
      ["POST", "/conversations/1/participants", { username: "abc", epoch: 2, keys: [] }],
      ["DELETE", `/conversations/1/participants/${alice.username}`],
      ["POST", "/messages", { conversationId: 1 }],
      ["POST", "/ws/tickets"],
    ];
    for (const [method, path, body] of routes) {
      const res = await call(method, path, { body });
      expect(res.status, `${method} ${path}`).toBe(401);
      await expectRefused(res);
    }
  });

  it.each([
    ["another scheme", () => `Basic ${btoa(`${alice.username}:${alice.password}`)}`],
    ["Bearer without a token", () => "Bearer"],
    ["a token without the scheme", () => alice.token],
    ["two tokens", () => `Bearer ${alice.token} ${alice.token}`],
    ["the refresh token", () => `Bearer ${alice.refreshToken}`],
  ])("refuses a malformed Authorization header: %s", async (_, header) => {
    await expectRefused(await call("GET", "/users/me", { headers: { Authorization: header() } }));
  });

  const forged: [string, () => Promise<string> | string][] = [
    ["a garbage token", () => "not.a.jwt"],
    [
      "a real token with its payload swapped for another user's",
      () => {
        const [header, , signature] = alice.token.split(".");
        return `${header}.${bob.token.split(".")[1]}.${signature}`;
      },
    ],
    ["a token signed with another secret", () => signToken(alice, { secret: `${TEST_JWT_SECRET}-but-another-one` })],
    ["an alg: none token", () => unsignedToken(alice)],
    ["an HS512 token signed with the right secret", () => signToken(alice, { alg: "HS512" })],
    ["a token for another audience", () => signToken(alice, { audience: "someone-else" })],
    ["a token from another issuer", () => signToken(alice, { issuer: "not-parley" })],
    ["an expired token", () => signToken(alice, { issuedAt: now() - 7200, expiresAt: now() - 60 })],
    ["a token without exp", () => signToken(alice, { expiresAt: null })],
    ["a token of another type (typ: JWT)", () => signToken(alice, { typ: "JWT" })],
    ["a token of another type (typ: rt+jwt)", () => signToken(alice, { typ: "rt+jwt" })],
    ["a token for a user id that does not exist", () => signToken({ ...alice, userId: 2_000_000_000 })],
    ["a token whose sub is not a user id", () => signToken(alice, { sub: "alice" })],
    ["a token without did", () => signToken(alice, { did: undefined })],
    ["a token whose did is a string", () => signToken(alice, { did: String(alice.deviceId) })],
    ["a token without sid", () => signToken(alice, { sid: undefined })],
    ["a token whose sid is 0", () => signToken(alice, { sid: 0 })],
    ["a token naming another user's session", () => signToken(alice, { sid: bob.sessionId })],
    ["a token naming another user's device", () => signToken(alice, { did: bob.deviceId })],
    ["a token for a session that does not exist", () => signToken(alice, { sid: 2_000_000_000 })],
  ];

  it.each(forged)("refuses %s", async (_, make) => {
    await expectRefused(await call("GET", "/users/me", { token: await make() }));
  });

  it("refuses a well-made token of a session that has ended (revocation is immediate)", async () => {
    const user = await registerUser("ended");
    const copy = await signToken(user);
    expect((await call("GET", "/users/me", { token: copy })).status).toBe(200);
    expect((await call("POST", "/auth/logout", { token: user.token })).status).toBe(204);
    await expectRefused(await call("GET", "/users/me", { token: copy }));
    await expectRefused(await call("GET", "/users/me", { token: user.token }));
  });
});
