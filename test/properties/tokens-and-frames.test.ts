import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { call, createConversation, errorOf, registerUser, type TestUser } from "../helpers/api";
import { conversationSocket, openSocket } from "../helpers/sockets";
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

  it("a well-signed token for a user that does not exist reads nothing and writes nothing", async () => {
    const ghost = await signToken({ userId: 2 ** 40, username: "ghost" });
    expect((await call("GET", "/users/me", { token: ghost })).status).toBe(401);
    expect(
      (await call("PUT", "/users/me/public-key", { token: ghost, body: { publicKey: btoa("k".repeat(32)) } })).status,
    ).toBe(401);
    expect(await (await call("GET", "/conversations", { token: ghost })).json()).toEqual([]);
    expect((await call("GET", `/conversations/${conversationId}/messages`, { token: ghost })).status).toBe(403);
    const post = await call("POST", "/messages", {
      token: ghost,
      body: { conversationId, nonce: btoa("n".repeat(12)), ciphertext: "AA==", authTag: btoa("t".repeat(16)) },
    });
    expect(post.status).toBe(403);
  });
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
