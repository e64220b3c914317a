import { exports } from "cloudflare:workers";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { b64, call, errorOf, json, randomBytes, registerUser, uniqueName } from "../helpers/api";

const PASSWORD = "correct horse battery";
const validBody = (overrides: Record<string, unknown> = {}) => ({
  username: uniqueName("reg"),
  password: PASSWORD,
  publicKey: b64(randomBytes(32)),
  ...overrides,
});

/** A 3-character username unlikely to collide within this file. */
const shortName = () =>
  Array.from(randomBytes(3), (n) => "abcdefghijklmnopqrstuvwxyz0123456789_.-ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 65]).join(
    "",
  );

/** A client address of its own for requests built by hand (register and login are limited per IP). */
const ip = () => `198.18.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;

const login = (username: string, password: string) => call("POST", "/auth/login", { body: { username, password } });

describe("POST /auth/register", () => {
  it("answers 201 with the new user's id and the username as given", async () => {
    const username = uniqueName("MixedCase");
    const res = await call("POST", "/auth/register", { body: validBody({ username }) });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body).toEqual({ userId: expect.any(Number), username });
    expect(Number.isInteger(body.userId) && body.userId > 0).toBe(true);
  });

  it("accepts the bounds: 3 and 32 characters, 8 and 256 password characters, 32 and 512 key bytes", async () => {
    const small = validBody({ username: shortName(), password: "12345678", publicKey: b64(randomBytes(32)) });
    const large = validBody({
      username: uniqueName("max").padEnd(32, "x"),
      password: "p".repeat(256),
      publicKey: b64(randomBytes(512)),
    });
    for (const body of [small, large]) {
      const res = await call("POST", "/auth/register", {
        body,
        headers: { "Content-Type": "application/json; charset=utf-8" },
      });
      expect(res.status, JSON.stringify(body.username)).toBe(201);
      expect((await login(body.username, body.password)).status).toBe(200);
    }
  });

  it("answers 409 for a username taken in another case, and keeps the first account", async () => {
    const first = await registerUser("Taken");
    const res = await call("POST", "/auth/register", {
      body: validBody({ username: first.username.toUpperCase(), password: "another password" }),
    });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe("conflict");
    expect((await login(first.username, first.password)).status).toBe(200);
    expect((await login(first.username, "another password")).status).toBe(401);
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ["a 2-character username", { username: "ab" }, "username"],
    ["a 33-character username", { username: "u".repeat(33) }, "username"],
    ["a username with a space", { username: "bad name" }, "username"],
    ["a username with unicode", { username: "jos\u00e9_user" }, "username"],
    ["a username with a NUL", { username: "nul\u0000user" }, "username"],
    ["a username with @", { username: "me@example" }, "username"],
    ["a missing username", { username: undefined }, "username"],
    ["a 7-character password", { password: "1234567" }, "password"],
    ["a 257-character password", { password: "p".repeat(257) }, "password"],
    ["a password that is not a string", { password: 12345678 }, "password"],
    ["a publicKey that is not base64", { publicKey: "not base64 at all!" }, "publicKey"],
    ["an unpadded publicKey", { publicKey: b64(randomBytes(32)).replace(/=+$/, "") }, "publicKey"],
    [
      "a urlsafe publicKey",
      { publicKey: b64(new Uint8Array(33).fill(0xfb)).replace(/\+/g, "-").replace(/\//g, "_") },
      "publicKey",
    ],
    ["a publicKey with a line break", { publicKey: `${b64(randomBytes(30))}\n${b64(randomBytes(30))}` }, "publicKey"],
    ["a publicKey of 31 bytes", { publicKey: b64(randomBytes(31)) }, "publicKey"],
    ["a publicKey of 513 bytes", { publicKey: b64(randomBytes(513)) }, "publicKey"],
  ];

  it.each(invalid)("answers 422 for %s, naming the field", async (_, overrides, path) => {
    const res = await call("POST", "/auth/register", { body: validBody(overrides) });
    expect(res.status).toBe(422);
    const error = await errorOf(res);
    expect(error.code).toBe("validation_failed");
    expect(error.details?.map((d) => d.path)).toContain(path);
  });

  it("stores nothing when a field is invalid", async () => {
    const body = validBody({ publicKey: b64(randomBytes(31)) });
    expect((await call("POST", "/auth/register", { body })).status).toBe(422);
    expect((await login(body.username, body.password)).status).toBe(401);
  });

  it("answers 415 for a body that is not declared as JSON", async () => {
    const body = JSON.stringify(validBody());
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
      const headers: Record<string, string> = { "CF-Connecting-IP": ip() };
      if (contentType) headers["Content-Type"] = contentType;
      // A Uint8Array body makes fetch add no Content-Type of its own.
      const request = new Request("http://parley.test/auth/register", {
        method: "POST",
        headers,
        body: new TextEncoder().encode(body),
      });
      const res = await exports.default.fetch(request);
      expect(res.status, String(contentType)).toBe(415);
      expect((await errorOf(res)).code).toBe("unsupported_media_type");
    }
  });

  it("answers 400 for JSON that does not parse", async () => {
    for (const text of ['{"username": "abc",', "", "{'username': 'abc'}"]) {
      const res = await call("POST", "/auth/register", { body: text, headers: { "Content-Type": "application/json" } });
      expect(res.status, text).toBe(400);
      expect((await errorOf(res)).code).toBe("bad_request");
    }
  });

  describe("body size", () => {
    /** A valid registration padded with an ignored field to exactly `size` bytes of JSON. */
    const paddedBody = (size: number) => {
      const body = validBody();
      const base = JSON.stringify({ ...body, padding: "" }).length;
      return { body, text: JSON.stringify({ ...body, padding: "x".repeat(size - base) }) };
    };

    it("accepts a body of exactly 256 KiB", async () => {
      const { text } = paddedBody(256 * 1024);
      expect(text.length).toBe(256 * 1024);
      expect((await call("POST", "/auth/register", { body: text })).status).toBe(201);
    });

    it("answers 413 for a body over 256 KiB and stores nothing", async () => {
      const { body, text } = paddedBody(256 * 1024 + 1);
      const res = await call("POST", "/auth/register", { body: text });
      expect(res.status).toBe(413);
      expect((await errorOf(res)).code).toBe("payload_too_large");
      expect((await login(body.username, body.password)).status).toBe(401);
    });

    it("answers 413 for a streamed body over 256 KiB without Content-Length", async () => {
      const { body, text } = paddedBody(300 * 1024);
      const bytes = new TextEncoder().encode(text);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 16 * 1024) controller.enqueue(bytes.slice(i, i + 16 * 1024));
          controller.close();
        },
      });
      const request = new Request("http://parley.test/auth/register", {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": ip() },
        body: stream,
      });
      expect(request.headers.has("Content-Length")).toBe(false);
      const res = await exports.default.fetch(request);
      expect(res.status).toBe(413);
      expect((await errorOf(res)).code).toBe("payload_too_large");
      expect((await login(body.username, body.password)).status).toBe(401);
    });
  });
});

describe("POST /auth/login", () => {
  it("answers 200 with a Bearer token whose claims are the contract's", async () => {
    const user = await registerUser("login");
    const before = Math.floor(Date.now() / 1000);
    const res = await login(user.username, user.password);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({ accessToken: expect.any(String), tokenType: "Bearer", expiresIn: 3600 });
    expect(decodeProtectedHeader(body.accessToken).alg).toBe("HS256");
    const claims = decodeJwt(body.accessToken);
    expect(claims).toMatchObject({
      sub: String(user.userId),
      username: user.username,
      iss: "parley",
      aud: "parley-clients",
    });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(claims.iat).toBeGreaterThanOrEqual(before - 1);
    expect(claims.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    const me = await call("GET", "/users/me", { token: body.accessToken });
    expect(me.status).toBe(200);
  });

  it("compares the username without regard to case", async () => {
    const user = await registerUser("Case");
    const res = await login(user.username.toUpperCase(), user.password);
    expect(res.status).toBe(200);
    expect(decodeJwt((await json(res)).accessToken)).toMatchObject({
      sub: String(user.userId),
      username: user.username,
    });
  });

  it("answers a wrong password and an unknown user with the same 401", async () => {
    const user = await registerUser("login");
    const wrong = await login(user.username, "not the password");
    const unknown = await login(uniqueName("ghost"), user.password);
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
    }
    const [wrongBody, unknownBody] = [await json(wrong), await json(unknown)];
    expect(wrongBody).toEqual(unknownBody);
    expect(wrongBody.error.code).toBe("unauthorized");
  });
});
