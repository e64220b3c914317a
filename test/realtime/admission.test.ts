import { describe, expect, it } from "vitest";
import { call, createConversation, errorOf, registerUser } from "../helpers/api";
import { openSocket } from "../helpers/sockets";
import { signToken } from "../helpers/tokens";

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
});
