import { beforeAll, describe, expect, it } from "vitest";
import {
  b64,
  call,
  errorOf,
  ISO_MS,
  json,
  randomBytes,
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

describe("GET /users/me", () => {
  it("answers the caller's own account", async () => {
    const res = await call("GET", "/users/me", { token: alice.token });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({
      userId: alice.userId,
      username: alice.username,
      publicKey: alice.publicKey,
      createdAt: expect.stringMatching(ISO_MS),
    });
    expect(Math.abs(Date.parse(body.createdAt) - Date.now())).toBeLessThan(60_000);
  });
});

describe("PUT /users/me/public-key", () => {
  it("replaces the key; GET /users/me and GET /users/{username} then show the new bytes", async () => {
    const user = await registerUser("rekey");
    // 0xfb/0xff bytes encode to "+" and "/", which must survive unchanged.
    const publicKey = b64([...randomBytes(40), 0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff]);
    const res = await call("PUT", "/users/me/public-key", { token: user.token, body: { publicKey } });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({
      userId: user.userId,
      username: user.username,
      publicKey,
      createdAt: expect.stringMatching(ISO_MS),
    });
    expect(await json(await call("GET", "/users/me", { token: user.token }))).toEqual(body);
    const seen = await json(await call("GET", `/users/${user.username}`, { token: bob.token }));
    expect(seen.publicKey).toBe(publicKey);
  });

  it.each([
    ["too short", b64(randomBytes(31))],
    ["too long", b64(randomBytes(513))],
    ["unpadded", b64(randomBytes(32)).replace(/=+$/, "")],
    ["not base64", "%%%%"],
  ])("answers 422 for a key that is %s and keeps the old key", async (_, publicKey) => {
    const res = await call("PUT", "/users/me/public-key", { token: alice.token, body: { publicKey } });
    expect(res.status).toBe(422);
    const error = await errorOf(res);
    expect(error.code).toBe("validation_failed");
    expect(error.details?.map((d) => d.path)).toContain("publicKey");
    expect((await json(await call("GET", "/users/me", { token: alice.token }))).publicKey).toBe(alice.publicKey);
  });
});

describe("GET /users/{username}", () => {
  it("answers the user's id, username and public key, and nothing else", async () => {
    const res = await call("GET", `/users/${alice.username}`, { token: bob.token });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ userId: alice.userId, username: alice.username, publicKey: alice.publicKey });
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
      ["PUT", "/users/me/public-key", { publicKey: b64(randomBytes(32)) }],
      ["GET", `/users/${alice.username}`],
      ["GET", "/conversations"],
      ["POST", "/conversations", { participants: [] }],
      ["GET", "/conversations/1"],
      ["GET", "/conversations/1/messages"],
      ["POST", "/conversations/1/participants", { username: "abc", encryptedKey: b64(randomBytes(16)) }],
      ["DELETE", `/conversations/1/participants/${alice.username}`],
      ["POST", "/messages", { conversationId: 1 }],
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
    ["a token for a user id that does not exist", () => signToken({ userId: 2_000_000_000, username: "nobody" })],
    ["a token whose sub is not a user id", () => signToken(alice, { sub: "alice" })],
  ];

  it.each(forged)("refuses %s", async (_, make) => {
    await expectRefused(await call("GET", "/users/me", { token: await make() }));
  });
});
