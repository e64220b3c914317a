// Sessions at the protocol level against wrangler dev: revocation and logout close live sockets with
// 4001 within a second (a real TCP client), a reused refresh token ends the whole session, and a
// socket ticket admits exactly one socket.
import { afterEach, describe, expect, it } from "vitest";
import type { Session } from "../../contract/index.ts";
import {
  api,
  connectSocket,
  createConversation,
  expectStatus,
  login,
  newUser,
  newUsers,
  type TestUser,
  ticket,
  wsUrl,
} from "./helpers.js";
import { trackSockets } from "./sockets.js";
import { openPinged, type PingedSocket } from "./tcp-socket.js";

const { track, open } = trackSockets();
const pinged: PingedSocket[] = [];
afterEach(() => {
  for (const s of pinged.splice(0)) s.close();
});
const keep = (s: PingedSocket) => {
  pinged.push(s);
  return s;
};

/** A conversation socket and the inbox socket of `user`'s session, both pinged (see tcp-socket.ts). */
async function liveSockets(user: TestUser, conversationId: number): Promise<PingedSocket[]> {
  return [
    keep(await openPinged(wsUrl({ conversationId, token: user.token }))),
    keep(await openPinged(wsUrl({ token: user.token }))),
  ];
}

const refresh = (refreshToken: string) => api<Session>("POST", "/auth/refresh", { body: { refreshToken } });

describe("session end closes live sockets with 4001", () => {
  it("revoking a device: its sockets close 4001 within a second, its tokens get 401, it cannot log in", async () => {
    const [alice, bob] = (await newUsers(2, "revoke")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const sockets = await liveSockets(alice, conv.conversationId);
    const bobs = await liveSockets(bob, conv.conversationId);

    const started = performance.now();
    const res = await api("DELETE", `/devices/${alice.deviceId}`, { token: alice.token, body: {} });
    const answered = performance.now();
    expect(res.status).toBe(204);
    for (const s of sockets) {
      const closed = await s.closed;
      expect(closed.code).toBe(4001);
      expect(closed.reason).toBe("session ended");
      expect(closed.at - answered, `close ${Math.round(closed.at - started)} ms after the request`).toBeLessThan(1000);
    }
    expect((await api("GET", "/users/me", { token: alice.token })).status).toBe(401);
    expect((await refresh(alice.refreshToken)).status).toBe(401);
    const again = await api("POST", "/auth/login", {
      body: { username: alice.username, password: alice.password, deviceId: alice.deviceId },
    });
    expect(again.status).toBe(401);
    // Bob's sockets are untouched, and the conversation now needs a new epoch (a device left it).
    for (const s of bobs) expect(s.ws.readyState).toBe(1);
    const view = await api<{ rotationNeeded: boolean }>("GET", `/conversations/${conv.conversationId}`, {
      token: bob.token,
    });
    expect(view.body.rotationNeeded).toBe(true);
  });

  it("logout: this session's sockets close 4001 within a second; another session of the device stays", async () => {
    const [alice, bob] = (await newUsers(2, "logout")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const other = await login(alice); // a second session on the same device
    const sockets = await liveSockets(alice, conv.conversationId);
    const survivor = keep(await openPinged(wsUrl({ token: other.accessToken })));

    const res = await api("POST", "/auth/logout", { token: alice.token });
    const answered = performance.now();
    expect(res.status).toBe(204);
    for (const s of sockets) {
      const closed = await s.closed;
      expect(closed.code).toBe(4001);
      expect(closed.at - answered).toBeLessThan(1000);
    }
    expect((await api("GET", "/users/me", { token: alice.token })).status).toBe(401);
    expect((await api("GET", "/users/me", { token: other.accessToken })).status).toBe(200);
    survivor.ws.send("ping");
    await new Promise<void>((resolve) => survivor.ws.once("message", () => resolve()));
    expect(survivor.ws.readyState).toBe(1);
  });
});

describe("refresh tokens", () => {
  it("rotate on every use; presenting a used one ends the whole session, the new tokens included", async () => {
    const alice = await newUser("refresh");
    const first = await refresh(alice.refreshToken);
    expectStatus(first, 200, "refresh");
    expect(first.body.refreshToken).not.toBe(alice.refreshToken);
    expect(first.body.sessionId).toBe(alice.sessionId);
    expect(first.body.deviceId).toBe(alice.deviceId);
    const fresh = first.body;
    expect((await api("GET", "/users/me", { token: fresh.accessToken })).status).toBe(200);
    const socket = keep(await openPinged(wsUrl({ token: fresh.accessToken })));

    // The old refresh token again, as a thief holding a copy would present it.
    const reused = await refresh(alice.refreshToken);
    expect(reused.status).toBe(401);
    expect(reused.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    expect((await socket.closed).code).toBe(4001);
    expect((await api("GET", "/users/me", { token: fresh.accessToken })).status).toBe(401);
    expect((await refresh(fresh.refreshToken)).status).toBe(401);
    // The device itself is fine: a new login opens a new session.
    const relogged = await login(alice);
    expect(relogged.sessionId).not.toBe(alice.sessionId);
    expect((await api("GET", "/users/me", { token: relogged.accessToken })).status).toBe(200);
  });
});

describe("socket tickets", () => {
  it("admit one socket: the same ticket again is refused with 1008, and a ticket never shows in a frame", async () => {
    const [alice, bob] = (await newUsers(2, "ticket")) as [TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const issued = await api<{ ticket: string; expiresIn: number }>("POST", "/ws/tickets", { token: alice.token });
    expect(issued.status).toBe(201);
    expect(issued.body.expiresIn).toBe(30);
    const url = wsUrl({ conversationId: conv.conversationId, ticket: issued.body.ticket });

    const first = await open(url);
    first.send("ping");
    await first.waitFor((_, texts) => texts.includes("pong"));
    const second = track(connectSocket(url));
    const refused = await second.closed;
    expect(refused.code).toBe(1008);
    expect(first.isClosed()).toBe(false);

    // A fresh ticket works for the inbox too; without a credential, or with garbage, 1008.
    const inbox = await open(wsUrl({ ticket: await ticket(alice) }));
    inbox.send("ping");
    await inbox.waitFor((_, texts) => texts.includes("pong"));
    for (const bad of [wsUrl({ ticket: "garbage" }), wsUrl({ ticket: "" })]) {
      expect((await track(connectSocket(bad)).closed).code).toBe(1008);
    }
    expect(first.texts.join("\n")).not.toContain(issued.body.ticket);
  });
});
