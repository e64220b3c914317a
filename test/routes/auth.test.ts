import { env, exports } from "cloudflare:workers";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import {
  b64,
  call,
  errorOf,
  json,
  makeAccountKey,
  makeDeviceKeys,
  randomBytes,
  registerUser,
  registrationBody,
  signDevice,
  uniqueName,
} from "../helpers/api";

const PASSWORD = "correct horse battery";

/** A valid registration (account key and device made and signed with Web Crypto), with some fields replaced. */
async function validBody(overrides: Record<string, unknown> = {}, device: Record<string, unknown> = {}) {
  const { body } = await registrationBody(uniqueName("reg"), PASSWORD);
  return { ...body, ...overrides, device: { ...body.device, ...device } };
}

/** A 3-character username unlikely to collide within this file. */
const shortName = () =>
  Array.from(randomBytes(3), (n) => "abcdefghijklmnopqrstuvwxyz0123456789_.-ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 65]).join(
    "",
  );

/** A client address of its own for requests built by hand (register and login are limited per IP). */
const ip = () => `198.18.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;

/** Logs in on a known device. */
const login = (username: string, password: string, deviceId: number) =>
  call("POST", "/auth/login", { body: { username, password, deviceId } });

/** Logs in as a new device: 401 for an account that does not exist, so "was anything stored?" needs no device id. */
const loginNewDevice = async (username: string, password: string) => {
  const device = await makeDeviceKeys("probe");
  return call("POST", "/auth/login", {
    body: {
      username,
      password,
      device: { name: device.name, identityKey: device.identityKey, signingKey: device.signingKey },
    },
  });
};

/** Rows stored for a username, in users and (through them) devices: both 0 after a refused registration. */
async function storedRows(username: string) {
  const users = await env.DIRECTORY.prepare("select count(*) as n from users where lower(username) = lower(?)")
    .bind(username)
    .first<{ n: number }>();
  const devices = await env.DIRECTORY.prepare(
    "select count(*) as n from devices d join users u on u.id = d.user_id where lower(u.username) = lower(?)",
  )
    .bind(username)
    .first<{ n: number }>();
  return { users: users!.n, devices: devices!.n };
}

describe("POST /auth/register", () => {
  it("answers 201 with the new user's id, the username as given and the (active) device's id", async () => {
    const body = await validBody({ username: uniqueName("MixedCase") });
    const res = await call("POST", "/auth/register", { body });
    expect(res.status).toBe(201);
    const registered = await json(res);
    expect(registered).toEqual({ userId: expect.any(Number), username: body.username, deviceId: expect.any(Number) });
    expect(Number.isInteger(registered.userId) && registered.userId > 0).toBe(true);
    expect(Number.isInteger(registered.deviceId) && registered.deviceId > 0).toBe(true);
    const session = await json(await login(body.username, PASSWORD, registered.deviceId));
    expect(session.deviceStatus).toBe("active");
  });

  it("accepts the bounds: 3 and 32 characters, 8 and 256 password characters, 1 and 64 device-name characters", async () => {
    const small = await validBody({ username: shortName(), password: "12345678" }, { name: "d" });
    const large = await validBody(
      { username: uniqueName("max").padEnd(32, "x"), password: "p".repeat(256) },
      { name: "n".repeat(64) },
    );
    for (const body of [small, large]) {
      const res = await call("POST", "/auth/register", {
        body,
        headers: { "Content-Type": "application/json; charset=utf-8" },
      });
      expect(res.status, JSON.stringify(body.username)).toBe(201);
      const { deviceId } = await json(res);
      expect((await login(body.username, body.password, deviceId)).status).toBe(200);
    }
  });

  it("stores the account key and device keys byte for byte, '+' and '/' included", async () => {
    // Retry until the keys contain both characters that urlsafe base64 would change.
    let body = await validBody();
    while (![body.accountKey, body.device.identityKey].join("").match(/\+.*\/|\/.*\+/)) body = await validBody();
    const res = await call("POST", "/auth/register", { body });
    expect(res.status).toBe(201);
    const { userId, deviceId } = await json(res);
    const viewer = await registerUser("viewer");
    const seen = await json(await call("GET", `/users/${body.username}`, { token: viewer.token }));
    expect(seen).toMatchObject({ userId, accountKey: body.accountKey });
    expect(seen.devices).toEqual([
      expect.objectContaining({
        deviceId,
        identityKey: body.device.identityKey,
        signingKey: body.device.signingKey,
        signature: body.device.signature,
      }),
    ]);
  });

  it("answers 409 for a username taken in another case, and keeps the first account", async () => {
    const first = await registerUser("Taken");
    const res = await call("POST", "/auth/register", {
      body: await validBody({ username: first.username.toUpperCase(), password: "another password" }),
    });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe("conflict");
    expect((await login(first.username, first.password, first.deviceId)).status).toBe(200);
    expect((await login(first.username, "another password", first.deviceId)).status).toBe(401);
    expect(await storedRows(first.username)).toEqual({ users: 1, devices: 1 });
  });

  const key = (n: number) => b64(randomBytes(n));
  const urlsafe = () => b64(new Uint8Array(32).fill(0xfb)).replace(/\+/g, "-").replace(/\//g, "_");
  const invalid: [string, Record<string, unknown>, Record<string, unknown>, string][] = [
    ["a 2-character username", { username: "ab" }, {}, "username"],
    ["a 33-character username", { username: "u".repeat(33) }, {}, "username"],
    ["a username with a space", { username: "bad name" }, {}, "username"],
    ["a username with unicode", { username: "jos\u00e9_user" }, {}, "username"],
    ["a username with a NUL", { username: "nul\u0000user" }, {}, "username"],
    ["a username with @", { username: "me@example" }, {}, "username"],
    ["a missing username", { username: undefined }, {}, "username"],
    ["a 7-character password", { password: "1234567" }, {}, "password"],
    ["a 257-character password", { password: "p".repeat(257) }, {}, "password"],
    ["a password that is not a string", { password: 12345678 }, {}, "password"],
    ["an accountKey that is not base64", { accountKey: "not base64 at all!" }, {}, "accountKey"],
    ["an unpadded accountKey", { accountKey: key(32).replace(/=+$/, "") }, {}, "accountKey"],
    ["a urlsafe accountKey", { accountKey: urlsafe() }, {}, "accountKey"],
    ["an accountKey with a line break", { accountKey: `${key(15)}\n${key(15)}` }, {}, "accountKey"],
    ["an accountKey of 31 bytes", { accountKey: key(31) }, {}, "accountKey"],
    ["an accountKey of 33 bytes", { accountKey: key(33) }, {}, "accountKey"],
    ["a missing accountKey", { accountKey: undefined }, {}, "accountKey"],
    ["a missing device", { device: undefined }, {}, "device"],
    ["an identityKey of 31 bytes", {}, { identityKey: key(31) }, "device.identityKey"],
    ["an identityKey of 33 bytes", {}, { identityKey: key(33) }, "device.identityKey"],
    ["an identityKey that is not base64", {}, { identityKey: "%%%%" }, "device.identityKey"],
    ["a signingKey of 31 bytes", {}, { signingKey: key(31) }, "device.signingKey"],
    ["an unpadded signingKey", {}, { signingKey: key(32).replace(/=+$/, "") }, "device.signingKey"],
    ["a signature of 63 bytes", {}, { signature: key(63) }, "device.signature"],
    ["a signature of 65 bytes", {}, { signature: key(65) }, "device.signature"],
    ["a missing signature", {}, { signature: undefined }, "device.signature"],
    ["an empty device name", {}, { name: "" }, "device.name"],
    ["a 65-character device name", {}, { name: "n".repeat(65) }, "device.name"],
  ];

  it.each(invalid)("answers 422 for %s, naming the field, and stores nothing", async (_, overrides, device, path) => {
    const body = await validBody(overrides, device);
    if (overrides.device === undefined && "device" in overrides) delete (body as Record<string, unknown>).device;
    const res = await call("POST", "/auth/register", { body });
    expect(res.status).toBe(422);
    const error = await errorOf(res);
    expect(error.code).toBe("validation_failed");
    expect(error.details?.map((d) => d.path)).toContain(path);
    if (typeof body.username === "string") expect(await storedRows(body.username)).toEqual({ users: 0, devices: 0 });
  });

  describe("device signature", () => {
    /** Each makes a body whose signature is well formed (64 bytes) but does not verify with its account key. */
    const forgeries: [string, () => Promise<Record<string, any>>][] = [
      ["random bytes", () => validBody({}, { signature: b64(randomBytes(64)) })],
      [
        "made by another account key",
        async () => {
          const body = await validBody();
          const other = await makeAccountKey();
          return { ...body, device: { ...body.device, signature: await signDevice(other.pair, body.device) } };
        },
      ],
      [
        "over the keys in the other order",
        async () => {
          const { body, account } = await registrationBody(uniqueName("reg"), PASSWORD);
          const swapped = { identityKey: body.device.signingKey, signingKey: body.device.identityKey };
          return { ...body, device: { ...body.device, signature: await signDevice(account.pair, swapped) } };
        },
      ],
      [
        "for another device",
        async () => {
          const { body, account } = await registrationBody(uniqueName("reg"), PASSWORD);
          const other = await makeDeviceKeys();
          return { ...body, device: { ...body.device, signature: await signDevice(account.pair, other) } };
        },
      ],
      [
        "with one bit flipped",
        async () => {
          const body = await validBody();
          const bytes = Uint8Array.from(atob(body.device.signature), (c) => c.charCodeAt(0));
          bytes[10]! ^= 1;
          return { ...body, device: { ...body.device, signature: b64(bytes) } };
        },
      ],
    ];

    it.each(forgeries)("answers 422 for a signature %s, storing nothing", async (_, make) => {
      const body = await make();
      const res = await call("POST", "/auth/register", { body });
      expect(res.status).toBe(422);
      const error = await errorOf(res);
      expect(error.code).toBe("validation_failed");
      expect(error.details).toEqual([{ path: "device.signature", message: expect.any(String) }]);
      expect(await storedRows(body.username)).toEqual({ users: 0, devices: 0 });
      expect((await loginNewDevice(body.username, PASSWORD)).status).toBe(401);
      // The same username with a good signature is still free.
      expect(
        (await call("POST", "/auth/register", { body: await validBody({ username: body.username }) })).status,
      ).toBe(201);
    });
  });

  it("answers 415 for a body that is not declared as JSON", async () => {
    const body = JSON.stringify(await validBody());
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
    for (const text of ['{"username": "abc",', "{'username': 'abc'}"]) {
      const res = await call("POST", "/auth/register", { body: text, headers: { "Content-Type": "application/json" } });
      expect(res.status, text).toBe(400);
      expect((await errorOf(res)).code).toBe("bad_request");
    }
  });

  it("treats an empty body as {} (v2: 422 naming the missing fields, not 400)", async () => {
    const res = await call("POST", "/auth/register", { body: "", headers: { "Content-Type": "application/json" } });
    expect(res.status).toBe(422);
    expect((await errorOf(res)).details?.map((d) => d.path)).toEqual(
      expect.arrayContaining(["username", "password", "accountKey", "device"]),
    );
  });

  describe("body size", () => {
    /** A valid registration padded with an ignored field to exactly `size` bytes of JSON. */
    const paddedBody = async (size: number) => {
      const body = await validBody();
      const base = JSON.stringify({ ...body, padding: "" }).length;
      return { body, text: JSON.stringify({ ...body, padding: "x".repeat(size - base) }) };
    };

    it("accepts a body of exactly 256 KiB", async () => {
      const { text } = await paddedBody(256 * 1024);
      expect(text.length).toBe(256 * 1024);
      expect((await call("POST", "/auth/register", { body: text })).status).toBe(201);
    });

    it("answers 413 for a body over 256 KiB and stores nothing", async () => {
      const { body, text } = await paddedBody(256 * 1024 + 1);
      const res = await call("POST", "/auth/register", { body: text });
      expect(res.status).toBe(413);
      expect((await errorOf(res)).code).toBe("payload_too_large");
      expect(await storedRows(body.username)).toEqual({ users: 0, devices: 0 });
    });

    it("answers 413 for a streamed body over 256 KiB without Content-Length", async () => {
      const { body, text } = await paddedBody(300 * 1024);
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
      expect(await storedRows(body.username)).toEqual({ users: 0, devices: 0 });
    });
  });
});

describe("POST /auth/login", () => {
  it("answers 200 with a Session whose access token carries the contract's claims", async () => {
    const user = await registerUser("login");
    const before = Math.floor(Date.now() / 1000);
    const res = await login(user.username, user.password, user.deviceId);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toEqual({
      accessToken: expect.any(String),
      tokenType: "Bearer",
      expiresIn: 900,
      refreshToken: expect.any(String),
      refreshExpiresIn: 30 * 24 * 3600,
      sessionId: expect.any(Number),
      deviceId: user.deviceId,
      deviceStatus: "active",
    });
    expect(body.sessionId).not.toBe(user.sessionId);
    expect(decodeProtectedHeader(body.accessToken)).toEqual({ alg: "HS256", typ: "at+jwt" });
    const claims = decodeJwt(body.accessToken);
    expect(claims).toEqual({
      sub: String(user.userId),
      did: user.deviceId,
      sid: body.sessionId,
      iss: "parley",
      aud: "parley-clients",
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(claims.iat).toBeGreaterThanOrEqual(before - 1);
    expect(claims.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    // The refresh token is opaque (not a JWT) and carries at least 32 random bytes.
    expect(body.refreshToken.split(".")).toHaveLength(1);
    expect(body.refreshToken.length).toBeGreaterThanOrEqual(43);
    const me = await call("GET", "/users/me", { token: body.accessToken });
    expect(me.status).toBe(200);
  });

  it("compares the username without regard to case", async () => {
    const user = await registerUser("Case");
    const res = await login(user.username.toUpperCase(), user.password, user.deviceId);
    expect(res.status).toBe(200);
    expect(decodeJwt((await json(res)).accessToken)).toMatchObject({ sub: String(user.userId), did: user.deviceId });
  });

  it("answers a wrong password and an unknown user with the same 401, for a known or a new device", async () => {
    const user = await registerUser("login");
    const responses = [
      await login(user.username, "not the password", user.deviceId),
      await login(uniqueName("ghost"), user.password, user.deviceId),
      await loginNewDevice(user.username, "not the password"),
      await loginNewDevice(uniqueName("ghost"), user.password),
    ];
    const bodies = [];
    for (const res of responses) {
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
      bodies.push(await json(res));
    }
    for (const body of bodies) expect(body).toEqual(bodies[0]);
    expect(bodies[0].error.code).toBe("unauthorized");
    // A refused new-device login stores no pending device.
    const devices = await json(await call("GET", "/devices", { token: user.token }));
    expect(devices.map((d: { deviceId: number }) => d.deviceId)).toEqual([user.deviceId]);
  });

  it("answers 401 for a device of another user or an unknown device, with the right password", async () => {
    const [user, other] = await Promise.all([registerUser("login"), registerUser("login")]);
    for (const deviceId of [other.deviceId, 2_000_000_000]) {
      const res = await login(user.username, user.password, deviceId);
      expect(res.status, String(deviceId)).toBe(401);
      expect((await errorOf(res)).code).toBe("unauthorized");
    }
  });

  it("logs a new device in as pending; the known device stays active", async () => {
    const user = await registerUser("login");
    const res = await loginNewDevice(user.username, user.password);
    expect(res.status).toBe(200);
    const session = await json(res);
    expect(session).toMatchObject({ deviceStatus: "pending", tokenType: "Bearer" });
    expect(session.deviceId).not.toBe(user.deviceId);
    const devices = await json(await call("GET", "/devices", { token: user.token }));
    expect(devices.map((d: { deviceId: number; status: string }) => [d.deviceId, d.status])).toEqual([
      [user.deviceId, "active"],
      [session.deviceId, "pending"],
    ]);
  });

  it("answers 422 for a body that names neither a device id nor a new device", async () => {
    const user = await registerUser("login");
    for (const body of [
      { username: user.username, password: user.password },
      { username: user.username, password: user.password, deviceId: "1" },
      { username: user.username, password: user.password, deviceId: user.deviceId, device: { name: "x" } },
    ]) {
      const res = await call("POST", "/auth/login", { body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect((await errorOf(res)).code).toBe("validation_failed");
    }
  });
});
