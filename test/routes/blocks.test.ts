import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  addParticipant,
  call,
  createConversation,
  errorOf,
  getConversation,
  json,
  registerUser,
  wrapFor,
} from "../helpers/api";

const blocked = async (token: string) => json(await call("GET", "/users/me/blocked", { token }));
const block = (token: string, username: string) => call("PUT", `/users/me/blocked/${username}`, { token });
const unblock = (token: string, username: string) => call("DELETE", `/users/me/blocked/${username}`, { token });

describe("blocking", () => {
  it("blocks, lists and unblocks; twice is still 204 and stores one row", async () => {
    const alice = await registerUser("blk");
    const bob = await registerUser("blk");
    expect(await blocked(alice.token)).toEqual([]);
    expect((await block(alice.token, bob.username.toUpperCase())).status).toBe(204);
    expect((await block(alice.token, bob.username)).status).toBe(204);
    const list = await blocked(alice.token);
    expect(list).toEqual([{ userId: bob.userId, username: bob.username, blockedAt: expect.any(String) }]);
    expect(new Date(list[0].blockedAt).toISOString()).toBe(list[0].blockedAt);
    expect(await blocked(bob.token), "blocking is one way").toEqual([]);
    expect((await unblock(alice.token, bob.username)).status).toBe(204);
    expect((await unblock(alice.token, bob.username)).status, "unblocking someone not blocked").toBe(204);
    expect(await blocked(alice.token)).toEqual([]);
  });

  it("refuses yourself (422), unknown or impossible names (404), and strangers' tokens (401), storing nothing", async () => {
    const alice = await registerUser("blk");
    const self = await block(alice.token, alice.username);
    expect(self.status).toBe(422);
    expect((await errorOf(self)).details).toEqual([{ path: "username", message: "must be someone else" }]);
    expect((await block(alice.token, "nobody_at_all_here")).status).toBe(404);
    expect((await block(alice.token, "\u212Aate")).status).toBe(404);
    expect((await unblock(alice.token, "nobody_at_all_here")).status).toBe(404);
    expect((await call("GET", "/users/me/blocked")).status).toBe(401);
    expect((await call("PUT", `/users/me/blocked/${alice.username}`, { token: "nope" })).status).toBe(401);
    const rows = await env.DIRECTORY.prepare("select count(*) as n from blocks where blocker_id = ?")
      .bind(alice.userId)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });

  it("nobody can create a conversation with, or add, someone who has blocked them (403); others still can", async () => {
    const [alice, bob, carol] = await Promise.all([registerUser("blk"), registerUser("blk"), registerUser("blk")]);
    expect((await block(bob.token, alice.username)).status).toBe(204);

    const keys = await Promise.all([alice.deviceId, bob.deviceId].map((d) => wrapFor(alice, d)));
    const created = await call("POST", "/conversations", {
      token: alice.token,
      body: { participants: [alice.username, bob.username], keys },
    });
    expect(created.status).toBe(403);
    expect(await errorOf(created)).toMatchObject({ code: "forbidden", message: "this user cannot be added" });
    expect((await json(await call("GET", "/conversations", { token: bob.token }))).conversations).toEqual([]);

    const id = await createConversation(alice, carol);
    const added = await addParticipant(alice, id, bob);
    expect(added.status).toBe(403);
    expect(await errorOf(added)).toMatchObject({ code: "forbidden", message: "this user cannot be added" });
    expect(await getConversation(alice, id)).toMatchObject({ epoch: 1, participants: expect.any(Array) });
    expect((await getConversation(alice, id)).participants).toHaveLength(2);

    // Blocking is one way: Bob may still start a conversation with Alice, and Carol may add Bob.
    expect((await createConversation(bob, alice)) > 0).toBe(true);
    expect((await addParticipant(carol, id, bob)).status).toBe(201);
    // Unblocked, Alice can add Bob again.
    expect((await unblock(bob.token, alice.username)).status).toBe(204);
    expect((await createConversation(alice, bob)) > 0).toBe(true);
  });
});
