import { describe, expect, it } from "vitest";
import { call, createConversation, errorOf, json, registerUser, sendMessage, sleep } from "../helpers/api";
import { conversationSocket, inboxSocket } from "../helpers/sockets";

const refresh = (refreshToken: string) => call("POST", "/auth/refresh", { body: { refreshToken } });

describe("sessions and refresh tokens", () => {
  it("issues at+jwt access tokens with sub, did, sid and a 15-minute lifetime", async () => {
    const alice = await registerUser("sess");
    const [header, payload] = alice.token
      .split(".")
      .slice(0, 2)
      .map((part) => JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))));
    expect(header).toMatchObject({ alg: "HS256", typ: "at+jwt" });
    expect(payload).toMatchObject({ sub: String(alice.userId), did: alice.deviceId, sid: alice.sessionId });
    expect(payload.exp - payload.iat).toBe(900);
    expect(alice.refreshToken.length).toBeGreaterThanOrEqual(43);
  });

  it("rotates the refresh token; reusing an old one ends the whole session (new tokens too) with 401", async () => {
    const alice = await registerUser("sess");
    const first = await refresh(alice.refreshToken);
    expect(first.status).toBe(200);
    const next = await json(first);
    expect(next.refreshToken).not.toBe(alice.refreshToken);
    expect(next.sessionId).toBe(alice.sessionId);
    expect((await call("GET", "/users/me", { token: next.accessToken })).status).toBe(200);
    const replay = await refresh(alice.refreshToken);
    expect(replay.status).toBe(401);
    expect(replay.headers.get("WWW-Authenticate")).toBe("Bearer");
    expect((await call("GET", "/users/me", { token: next.accessToken })).status).toBe(401);
    expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(401);
    expect((await refresh(next.refreshToken)).status).toBe(401);
  });

  it("refuses an unknown refresh token", async () => {
    expect((await refresh("x".repeat(43))).status).toBe(401);
  });

  it("logout ends the session at once: 401 on the next request, 4001 on its sockets", async () => {
    const [alice, bob] = await Promise.all([registerUser("sess"), registerUser("sess")]);
    const id = await createConversation(alice, bob);
    const [room, inbox] = await Promise.all([conversationSocket(id, alice.token), inboxSocket(alice.token)]);
    const started = Date.now();
    expect((await call("POST", "/auth/logout", { token: alice.token })).status).toBe(204);
    const closed = await Promise.all([room.closed, inbox.closed]);
    expect(Date.now() - started).toBeLessThan(1000);
    for (const c of closed) expect(c).toEqual({ code: 4001, reason: "session ended" });
    expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(401);
    // POST /messages folds the check into its write: refused too.
    expect((await sendMessage(alice, id)).status).toBe(401);
    expect((await refresh(alice.refreshToken)).status).toBe(401);
  });

  it("lists live sessions; ending another needs the password (403 wrong), unknown or foreign 404", async () => {
    const alice = await registerUser("sess");
    const bob = await registerUser("sess");
    const again = await json(
      await call("POST", "/auth/login", {
        body: { username: alice.username, password: alice.password, deviceId: alice.deviceId },
      }),
    );
    const list = await json(await call("GET", "/auth/sessions", { token: alice.token }));
    expect(list.map((s: { sessionId: number }) => s.sessionId).sort()).toEqual(
      [alice.sessionId, again.sessionId].sort(),
    );
    expect(list.find((s: { current: boolean }) => s.current).sessionId).toBe(alice.sessionId);
    const other = `/auth/sessions/${again.sessionId}`;
    expect((await call("DELETE", other, { token: alice.token, body: { password: "wrong password" } })).status).toBe(
      403,
    );
    expect(
      (
        await call("DELETE", `/auth/sessions/${bob.sessionId}`, {
          token: alice.token,
          body: { password: alice.password },
        })
      ).status,
    ).toBe(404);
    expect((await call("DELETE", other, { token: alice.token, body: { password: alice.password } })).status).toBe(204);
    expect((await call("GET", "/users/me", { token: again.accessToken })).status).toBe(401);
    expect((await call("DELETE", other, { token: alice.token, body: { password: alice.password } })).status).toBe(404);
    expect((await call("DELETE", `/auth/sessions/${alice.sessionId}`, { token: alice.token })).status).toBe(204);
    expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(401);
  });

  it("a password change ends every other session and keeps the current one", async () => {
    const alice = await registerUser("sess");
    const other = await json(
      await call("POST", "/auth/login", {
        body: { username: alice.username, password: alice.password, deviceId: alice.deviceId },
      }),
    );
    const wrong = await call("POST", "/auth/password", {
      token: alice.token,
      body: { currentPassword: "not the password", newPassword: "a new password" },
    });
    expect(wrong.status).toBe(403);
    const res = await call("POST", "/auth/password", {
      token: alice.token,
      body: { currentPassword: alice.password, newPassword: "a new password" },
    });
    expect(res.status).toBe(204);
    expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(200);
    expect((await call("GET", "/users/me", { token: other.accessToken })).status).toBe(401);
    const login = await call("POST", "/auth/login", {
      body: { username: alice.username, password: "a new password", deviceId: alice.deviceId },
    });
    expect(login.status).toBe(200);
  });

  it("settings: readReceipts defaults to true, PUT changes it, GET /users/me shows it", async () => {
    const alice = await registerUser("sess");
    expect((await json(await call("GET", "/users/me", { token: alice.token }))).settings).toEqual({
      readReceipts: true,
    });
    const put = await call("PUT", "/users/me/settings", { token: alice.token, body: { readReceipts: false } });
    expect(put.status).toBe(200);
    expect((await json(put)).settings).toEqual({ readReceipts: false });
    expect(await json(await call("GET", "/users/me/settings", { token: alice.token }))).toEqual({
      readReceipts: false,
    });
    expect(
      (await errorOf(await call("PUT", "/users/me/settings", { token: alice.token, body: { readReceipts: "no" } })))
        .code,
    ).toBe("validation_failed");
  });
});

describe("WebSocket tickets", () => {
  it("a ticket opens one socket once; a reused or unknown ticket is refused with 1008", async () => {
    const alice = await registerUser("tick");
    const res = await call("POST", "/ws/tickets", { token: alice.token });
    expect(res.status).toBe(201);
    const { ticket, expiresIn } = await json(res);
    expect(expiresIn).toBe(30);
    const { openSocket } = await import("../helpers/sockets");
    const socket = await openSocket(`ticket=${encodeURIComponent(ticket)}`);
    socket.ws.send("ping");
    await socket.waitFor((f) => f.includes("pong"));
    const again = await openSocket(`ticket=${encodeURIComponent(ticket)}`);
    expect((await again.closed).code).toBe(1008);
    const unknown = await openSocket("ticket=nope");
    expect((await unknown.closed).code).toBe(1008);
  });

  it("a ticket expires after 30 seconds", async () => {
    const { env } = await import("cloudflare:workers");
    const alice = await registerUser("tick");
    const { ticket } = await json(await call("POST", "/ws/tickets", { token: alice.token }));
    await env.DIRECTORY.prepare("update socket_tickets set expires_at = ?")
      .bind(new Date(Date.now() - 1).toISOString())
      .run();
    const { openSocket } = await import("../helpers/sockets");
    expect((await (await openSocket(`ticket=${encodeURIComponent(ticket)}`)).closed).code).toBe(1008);
    await sleep(0);
  });
});
