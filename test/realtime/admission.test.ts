import { describe, expect, it } from "vitest";
import { approve, call, createConversation, errorOf, json, loginPendingDevice, registerUser } from "../helpers/api";
import { shardD1Of } from "../helpers/databases";
import { conversationSocket, inboxSocket, openSocket } from "../helpers/sockets";
import { signToken } from "../helpers/tokens";

const INVALID = { code: 1008, reason: "invalid or expired token" };

/** The conversation's shard's copy of a session: `undefined` without one, else whether it is ended. */
async function shardCopy(conversationId: number, sessionId: number): Promise<{ ended: boolean } | undefined> {
  const row = await shardD1Of(conversationId)
    .prepare("select ended_at from sessions where id = ?")
    .bind(sessionId)
    .first<{ ended_at: string | null }>();
  return row ? { ended: row.ended_at !== null } : undefined;
}

async function admitted(socket: Awaited<ReturnType<typeof openSocket>>): Promise<void> {
  socket.ws.send("ping");
  await socket.waitFor((f) => f.includes("pong"));
}

describe("GET /ws admission", () => {
  it("answers 426 without an Upgrade header", async () => {
    const alice = await registerUser("adm");
    const res = await call("GET", `/ws?token=${alice.token}`);
    expect(res.status).toBe(426);
    expect((await errorOf(res)).code).toBe("bad_request");
  });

  it("refuses an Origin outside the allow-list with 403 before upgrading", async () => {
    const alice = await registerUser("adm");
    const res = await call("GET", `/ws?token=${alice.token}`, {
      headers: { Upgrade: "websocket", Origin: "https://evil.example" },
    });
    expect(res.status).toBe(403);
    expect(res.webSocket).toBeNull();
    expect((await errorOf(res)).code).toBe("forbidden");
  });

  it("admits an allowed Origin", async () => {
    const alice = await registerUser("adm");
    const bob = await registerUser("adm");
    const id = await createConversation(alice, bob);
    const socket = await openSocket(`conversationId=${id}&token=${alice.token}`, { Origin: "https://app.parley.test" });
    socket.ws.send("ping");
    await socket.waitFor((f) => f.includes("pong"));
  });

  it.each([
    ["a missing token", ""],
    ["a garbage token", "token=garbage"],
    ["a token signed with another secret", "token=OTHER"],
    ["an expired token", "token=EXPIRED"],
  ])("closes with 1008 for %s", async (_label, query) => {
    const alice = await registerUser("adm");
    const bob = await registerUser("adm");
    const id = await createConversation(alice, bob);
    const token =
      query === "token=OTHER"
        ? await signToken(alice, { secret: "another-secret-another-secret-123456" })
        : query === "token=EXPIRED"
          ? await signToken(alice, { expiresAt: Math.floor(Date.now() / 1000) - 10 })
          : undefined;
    const q = token ? `token=${token}` : query;
    const socket = await openSocket(`conversationId=${id}${q ? `&${q}` : ""}`);
    const { code } = await socket.closed;
    expect(code).toBe(1008);
  });

  it("closes with 1008 for a non-participant, an unknown conversation and a malformed id", async () => {
    const alice = await registerUser("adm");
    const bob = await registerUser("adm");
    const eve = await registerUser("adm");
    const id = await createConversation(alice, bob);
    for (const conversationId of [String(id), "999999999", "abc", "0"]) {
      const socket = await openSocket(`conversationId=${conversationId}&token=${eve.token}`);
      const closed = await socket.closed;
      expect(closed.code).toBe(1008);
      expect(socket.frames).toEqual([]);
    }
  });

  // A conversation socket's token is checked against the shard's copy of the session first (one
  // read with the participation); the directory answers whenever that copy cannot vouch for it.
  describe("the session check", () => {
    it("admits a session the shard has no copy of (a login after the conversation), from the directory", async () => {
      const [alice, bob] = await Promise.all([registerUser("adm"), registerUser("adm")]);
      const id = await createConversation(alice, bob);
      const login = await call("POST", "/auth/login", {
        body: { username: alice.username, password: alice.password, deviceId: alice.deviceId },
      });
      const again = await json(login);
      expect(await shardCopy(id, again.sessionId)).toBeUndefined();
      await admitted(await conversationSocket(id, again.accessToken));
    });

    it("refuses an ended session's token on a conversation socket and on the inbox, copy or not", async () => {
      const [alice, bob] = await Promise.all([registerUser("adm"), registerUser("adm")]);
      const id = await createConversation(alice, bob);
      const login = await call("POST", "/auth/login", {
        body: { username: alice.username, password: alice.password, deviceId: alice.deviceId },
      });
      const unmirrored = (await json(login)).accessToken as string;
      expect(await shardCopy(id, alice.sessionId)).toEqual({ ended: false });
      for (const token of [alice.token, unmirrored]) {
        expect((await call("POST", "/auth/logout", { token })).status).toBe(204);
        expect(await (await conversationSocket(id, token)).closed).toEqual(INVALID);
        expect(await (await inboxSocket(token)).closed).toEqual(INVALID);
      }
      expect(await shardCopy(id, alice.sessionId)).toEqual({ ended: true });
    });

    it("refuses a revoked device's token, admitted until then", async () => {
      const [alice, bob] = await Promise.all([registerUser("adm"), registerUser("adm")]);
      const id = await createConversation(alice, bob);
      const phone = await loginPendingDevice(alice, "phone");
      expect((await approve(alice, phone)).status).toBe(200);
      await admitted(await conversationSocket(id, phone.token));
      const revoke = await call("DELETE", `/devices/${phone.deviceId}`, {
        token: alice.token,
        body: { password: alice.password },
      });
      expect(revoke.status).toBe(204);
      expect(await (await conversationSocket(id, phone.token)).closed).toEqual(INVALID);
    });

    it("goes by the directory when only the shard's copy is ended (a revocation whose directory step failed)", async () => {
      const [alice, bob] = await Promise.all([registerUser("adm"), registerUser("adm")]);
      const id = await createConversation(alice, bob);
      await shardD1Of(id)
        .prepare("update sessions set ended_at = ? where id = ?")
        .bind(new Date().toISOString(), alice.sessionId)
        .run();
      // REST asks the directory too: the session still works there.
      expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(200);
      await admitted(await conversationSocket(id, alice.token));
    });

    it("refuses a former participant, whose session the shard still has alive, as not a participant", async () => {
      const [alice, bob, carol] = await Promise.all([registerUser("adm"), registerUser("adm"), registerUser("adm")]);
      const id = await createConversation(alice, bob, carol);
      const left = await call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: carol.token });
      expect(left.status).toBe(204);
      expect(await shardCopy(id, carol.sessionId)).toEqual({ ended: false });
      const closed = await (await conversationSocket(id, carol.token)).closed;
      expect(closed).toEqual({ code: 1008, reason: "not a participant of this conversation" });
    });
  });
});
