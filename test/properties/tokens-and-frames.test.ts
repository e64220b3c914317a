import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  activeDeviceIds,
  addBody,
  approve,
  call,
  conversationDeviceIds,
  createConversation,
  errorOf,
  getConversation,
  loginPendingDevice,
  messageBody,
  registerUser,
  rotate,
  type TestUser,
  wrapFor,
} from "../helpers/api";
import { conversationSocket, openSocket } from "../helpers/sockets";
import { counts } from "../helpers/state";
import { signToken, unsignedToken } from "../helpers/tokens";

/** Ways to spoil a good token; each must be refused with 401 (or 1008 on a socket). */
const spoiled = (user: TestUser) =>
  fc.oneof(
    fc.nat().map((n) => user.token.slice(0, n % user.token.length)), // truncated
    fc
      .tuple(fc.nat(), fc.constantFrom(..."ABCxyz019-_"))
      .map(([n, ch]) => {
        // a character changed in the header or payload (the signature's last character has spare bits)
        const at = n % user.token.lastIndexOf(".");
        return user.token[at] === ch
          ? `${user.token.slice(0, at)}Q${user.token.slice(at + 1)}`
          : `${user.token.slice(0, at)}${ch}${user.token.slice(at + 1)}`;
      })
      .filter((t) => t !== user.token),
    fc
      .constantFrom("another-secret-that-is-32-bytes-long!!", "")
      .chain((secret) => fc.constant(signToken(user, { secret: secret || "x".repeat(32) }))),
    fc.constant(signToken(user, { alg: "HS512" })),
    fc.constant(signToken(user, { expiresAt: Math.floor(Date.now() / 1000) - 1 })),
    fc.constant(signToken(user, { audience: "someone-else" })),
    fc.constant(signToken(user, { issuer: "someone-else" })),
    fc.constant(signToken(user, { sub: "0" })),
    fc.constant(signToken(user, { sub: "99999999999999999999999" })),
    // v2: an access token says so in its header, and names its device and session as numbers.
    fc.constantFrom("JWT", "refresh+jwt", "application/jwt").map((typ) => signToken(user, { typ })),
    fc.constantFrom<unknown>(String(user.deviceId), 0, -1, 1.5, null).map((did) => signToken(user, { did })),
    fc.constantFrom<unknown>(String(user.sessionId), 0, 2 ** 53, null).map((sid) => signToken(user, { sid })),
    fc.constant(unsignedToken(user)),
  );

describe("tokens, generated", () => {
  let user: TestUser;
  let conversationId: number;
  beforeAll(async () => {
    user = await registerUser("tok");
    conversationId = await createConversation(user, await registerUser("tok"));
  });

  it("a spoiled token gets 401 with WWW-Authenticate on REST and 1008 on a socket", async () => {
    await fc.assert(
      fc.asyncProperty(spoiled(user), async (maybeToken) => {
        const token = await maybeToken;
        const res = await call("GET", "/conversations", { headers: { Authorization: `Bearer ${token}` } });
        expect(res.status).toBe(401);
        expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
        expect((await errorOf(res)).code).toBe("unauthorized");
        const socket = await openSocket(`conversationId=${conversationId}&token=${encodeURIComponent(token)}`);
        expect((await socket.closed).code).toBe(1008);
      }),
      { numRuns: 60 },
    );
  }, 120_000);
});

const PASSWORD = "correct horse battery";

describe("well-signed tokens whose user, device or session is gone, generated", () => {
  let alice: TestUser;
  let conversationId: number;
  /** Tokens with a valid signature and claims whose session no longer counts, and why. */
  const ghosts: [string, string][] = [];
  const request = (token: string, method: string, path: string, body?: unknown) =>
    call(method, path, { token, body, headers: { "CF-Connecting-IP": "10.77.0.1" } });

  beforeAll(async () => {
    const [a, bob, carol, dave, eve, frank] = await Promise.all(
      ["gst", "gst", "gst", "gst", "gst", "gst"].map((p) => registerUser(p)),
    );
    alice = a!;
    conversationId = await createConversation(alice, bob!, carol!, dave!, eve!);
    const laptop = await loginPendingDevice(alice, "laptop");
    expect((await approve(alice, laptop)).status).toBe(200);
    // Each of these tokens was good for this very conversation until its session ended.
    expect((await call("POST", "/auth/logout", { token: eve!.token })).status).toBe(204);
    expect(
      (await call("DELETE", `/devices/${laptop.deviceId}`, { token: alice.token, body: { password: PASSWORD } }))
        .status,
    ).toBe(204);
    expect((await call("DELETE", "/users/me", { token: carol!.token, body: { password: PASSWORD } })).status).toBe(204);
    const refresh = { body: { refreshToken: dave!.refreshToken } };
    expect((await call("POST", "/auth/refresh", refresh)).status).toBe(200);
    expect((await call("POST", "/auth/refresh", refresh)).status).toBe(401); // a replay ends the session
    ghosts.push(
      ["logged out", eve!.token],
      ["device revoked", laptop.token],
      ["account deleted", carol!.token],
      ["refresh token replayed", dave!.token],
      ["unknown user", await signToken({ userId: 2 ** 40, deviceId: 2 ** 40, sessionId: 2 ** 40 })],
      ["unknown session", await signToken({ ...alice, sessionId: 2 ** 40 })],
      ["another user's session", await signToken({ ...bob!, userId: alice.userId })],
      ["another device's session", await signToken({ ...alice, deviceId: laptop.deviceId })],
    );
    // Back to a conversation that needs no rotation: a live token could post, commit and add below.
    await rotate(alice, conversationId);
    routes.push(
      ["GET", "/users/me"],
      ["PUT", "/users/me/settings", { readReceipts: false }],
      ["DELETE", "/users/me", { password: PASSWORD }],
      ["GET", "/devices"],
      ["GET", "/auth/sessions"],
      ["POST", "/auth/logout"],
      ["POST", "/ws/tickets"],
      ["GET", "/conversations"],
      [
        "POST",
        "/conversations",
        {
          participants: [alice.username, frank!.username],
          keys: await Promise.all((await activeDeviceIds(alice, alice, frank!)).map((d) => wrapFor(alice, d))),
        },
      ],
      ["GET", `/conversations/${conversationId}`],
      ["GET", `/conversations/${conversationId}/keys`],
      ["GET", `/conversations/${conversationId}/messages`],
      ["POST", `/conversations/${conversationId}/participants`, await addBody(alice, conversationId, frank!)],
      ["DELETE", `/conversations/${conversationId}/participants/${bob!.username}`],
    );
    const { epoch } = await getConversation(alice, conversationId);
    const devices = await conversationDeviceIds(alice, conversationId);
    const keys = await Promise.all(devices.map((d) => wrapFor(alice, d)));
    routes.push(
      ["POST", `/conversations/${conversationId}/epochs`, { epoch: epoch + 1, keys }],
      ["POST", "/messages", messageBody(conversationId, { keyEpoch: epoch })],
    );
  }, 60_000);
  const routes: [string, string, unknown?][] = [];

  it("get 401 with WWW-Authenticate on every route, change nothing, and are refused on sockets", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        async (g, r, inbox) => {
          const [why, token] = ghosts[g % ghosts.length]!;
          const [method, path, body] = routes[r % routes.length]!;
          const before = await counts();
          const res = await request(token, method, path, body);
          expect(res.status, `${why}: ${method} ${path}`).toBe(401);
          expect(res.headers.get("WWW-Authenticate")).toBe("Bearer");
          expect((await errorOf(res)).code).toBe("unauthorized");
          expect(await counts(), `${why}: ${method} ${path}`).toEqual(before);
          const query = inbox ? "" : `conversationId=${conversationId}&`;
          const socket = await openSocket(`${query}token=${encodeURIComponent(token)}`);
          expect((await socket.closed).code, `${why}: socket`).toBe(1008);
        },
      ),
      { numRuns: 80 },
    );
    // The same requests with a live token do go through: the 401s above were about the session alone.
    expect((await call("POST", "/messages", { token: alice.token, body: routes.at(-1)![2] })).status).toBe(201);
  }, 120_000);
});

describe("WebSocket frames, generated", () => {
  it("anything a client sends gets pong or an error frame and never closes the socket", async () => {
    const alice = await registerUser("frm");
    const id = await createConversation(alice, await registerUser("frm"));
    const frame = fc.oneof(
      fc.string({ maxLength: 300, unit: "grapheme" }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.constantFrom("ping", "PING", " ping", "pong", '{"type":"newMessage"}', "\u0000"),
      fc.uint8Array({ maxLength: 64 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 15 }), async (frames) => {
        const socket = await conversationSocket(id, alice.token);
        for (const f of frames) socket.ws.send(f);
        // `ping` is answered by the runtime at once, the rest by the object: compare as multisets.
        const expected = frames.map((f) => (f === "ping" ? "pong" : "error")).sort();
        await socket.waitFor((received) => received.length === frames.length);
        expect(socket.frames.map((r) => (r === "pong" ? "pong" : r?.type)).sort()).toEqual(expected);
        socket.ws.close(1000, "done");
        const closed = await socket.closed;
        expect(closed.code).toBe(1000);
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
