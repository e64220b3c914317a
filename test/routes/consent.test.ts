import { describe, expect, it } from "vitest";
import {
  accept,
  addParticipant,
  call,
  createConversation,
  createInvitation,
  errorOf,
  getConversation,
  history,
  json,
  registerUsers,
  rotate,
  sendMessage,
  type TestUser,
} from "../helpers/api";
import { shardD1Of } from "../helpers/databases";

const statusOf = async (viewer: TestUser, id: number, userId: number) =>
  (await getConversation(viewer, id)).participants.find((p: { userId: number }) => p.userId === userId);
const participantRows = async (id: number) =>
  (
    await shardD1Of(id)
      .prepare("select user_id, role, status from participants where conversation_id = ? order by user_id")
      .bind(id)
      .all<{ user_id: number; role: string; status: string }>()
  ).results;
const leave = (user: TestUser, id: number, who: TestUser = user) =>
  call("DELETE", `/conversations/${id}/participants/${who.username}`, { token: user.token });
const decline = (user: TestUser, id: number, body?: unknown) =>
  call("POST", `/conversations/${id}/decline`, { token: user.token, ...(body === undefined ? {} : { body }) });

describe("message requests (consent)", () => {
  it("someone who never accepted contact joins as invited: reads, but cannot post, add or rotate until accept", async () => {
    const [alice, bob, carol] = await registerUsers("req", "req", "req");
    const id = await createInvitation(alice, bob);
    const asBob = await getConversation(bob, id);
    expect(asBob.status).toBe("invited");
    expect(await statusOf(alice, id, alice.userId)).toMatchObject({ role: "admin", status: "member" });
    expect(await statusOf(alice, id, bob.userId)).toMatchObject({ role: "member", status: "invited" });
    expect(asBob.key).not.toBeNull(); // can read the keys…
    expect((await sendMessage(alice, id)).status).toBe(201);
    expect(await history(bob, id)).toHaveLength(1); // …and the history
    const posted = await sendMessage(bob, id);
    expect(posted.status).toBe(403);
    expect(posted.body.error.message).toBe("accept the conversation first");
    expect((await addParticipant(bob, id, carol)).status).toBe(403);
    await expect(rotate(bob, id)).rejects.toThrow(/403/);
    expect(await history(alice, id), "the refused post stored nothing").toHaveLength(1);
    expect(await participantRows(id), "nobody was added").toHaveLength(2);

    const accepted = await call("POST", `/conversations/${id}/accept`, { token: bob.token });
    expect(accepted.status).toBe(200);
    expect((await json(accepted)).status).toBe("member");
    expect((await call("POST", `/conversations/${id}/accept`, { token: bob.token })).status, "twice").toBe(200);
    expect((await sendMessage(bob, id)).status).toBe(201);
  });

  it("joins directly as a member whoever accepted the adder before, or started contact with them", async () => {
    const [alice, bob, carol] = await registerUsers("req", "req", "req");
    await accept(bob, await createInvitation(alice, bob)); // bob accepted alice
    const again = await createInvitation(alice, bob);
    expect((await getConversation(bob, again)).status).toBe("member");
    // carol started contact with alice, so alice adding carol needs no request…
    await createInvitation(carol, alice);
    const group = await createInvitation(alice, bob);
    expect((await addParticipant(alice, group, { username: carol.username })).status).toBe(201);
    expect((await getConversation(carol, group)).status).toBe("member");
    // …but bob, who never accepted carol, joins carol's conversation as invited.
    const fromCarol = await createInvitation(carol, bob);
    expect((await getConversation(bob, fromCarol)).status).toBe("invited");
  });

  it("decline removes the invited participant (as a leave), and with block also blocks the adder", async () => {
    const [alice, bob, carol] = await registerUsers("req", "req", "req");
    const id = await createInvitation(alice, bob, carol);
    expect((await decline(carol, id)).status).toBe(204);
    expect((await call("GET", `/conversations/${id}`, { token: carol.token })).status).toBe(403);
    expect((await getConversation(alice, id)).rotationNeeded).toBe(true);
    expect((await decline(bob, id, { block: true })).status).toBe(204);
    const blocked = await json(await call("GET", "/users/me/blocked", { token: bob.token }));
    expect(blocked.map((b: { userId: number }) => b.userId)).toEqual([alice.userId]);
    // Blocked: alice can neither start a conversation with bob nor add him.
    const created = await call("POST", "/conversations", {
      token: alice.token,
      body: { participants: [alice.username, bob.username], keys: [] },
    });
    expect(created.status).toBe(422); // shape first: keys must not be empty
    await expect(createInvitation(alice, bob)).rejects.toThrow(/403.*this user cannot be added/);
    const other = await createConversation(alice, carol);
    const added = await addParticipant(alice, other, bob);
    expect(added.status).toBe(403);
    expect((await errorOf(added)).message).toBe("this user cannot be added");
    expect((await participantRows(other)).map((r) => r.user_id)).toEqual(
      [alice.userId, carol.userId].sort((a, b) => a - b),
    );
    // Unblocked, it works again.
    await call("DELETE", `/users/me/blocked/${alice.username}`, { token: bob.token });
    expect((await addParticipant(alice, other, bob)).status).toBe(201);
  });

  it("declining a conversation one has accepted is 409; a non-participant gets 403 for accept and decline", async () => {
    const [alice, bob, eve] = await registerUsers("req", "req", "req");
    const id = await createConversation(alice, bob);
    expect((await decline(bob, id)).status).toBe(409);
    expect((await decline(alice, id)).status).toBe(409);
    expect((await call("POST", `/conversations/${id}/accept`, { token: eve.token })).status).toBe(403);
    expect((await decline(eve, id)).status).toBe(403);
    expect((await call("POST", "/conversations/999999999/accept", { token: eve.token })).status).toBe(403);
    expect(await participantRows(id)).toHaveLength(2);
  });
});

describe("roles", () => {
  it("only an admin removes others; a member may add people and leave", async () => {
    const [alice, bob, carol, dave] = await registerUsers("role", "role", "role", "role");
    const id = await createConversation(alice, bob, carol);
    const refused = await leave(bob, id, carol);
    expect(refused.status).toBe(403);
    expect(await participantRows(id)).toHaveLength(3);
    expect((await addParticipant(bob, id, dave)).status, "members may add").toBe(201);
    expect(await statusOf(alice, id, dave.userId)).toMatchObject({ role: "member" });
    expect((await leave(alice, id, dave)).status, "an admin removes anyone").toBe(204);
    expect((await leave(carol, id)).status, "anyone may leave").toBe(204);
    expect((await participantRows(id)).map((r) => r.user_id)).toEqual([alice.userId, bob.userId].sort((a, b) => a - b));
  });

  it("when the last admin leaves, the longest-standing member becomes admin", async () => {
    const [alice, bob, carol, dave] = await registerUsers("role", "role", "role", "role");
    const id = await createInvitation(alice, dave, bob); // dave never accepts: a request, not a member
    await accept(bob, id);
    await rotate(alice, id);
    expect((await addParticipant(alice, id, carol)).status).toBe(201);
    expect((await leave(alice, id)).status).toBe(204);
    const rows = await participantRows(id);
    expect(rows.find((r) => r.user_id === bob.userId)?.role, "bob: a member since the start").toBe("admin");
    expect(rows.filter((r) => r.role === "admin")).toHaveLength(1);
  });
});

describe("the conversation list", () => {
  it("pages most recent activity first with an opaque cursor, null on the last page", async () => {
    const [alice, bob] = await registerUsers("page", "page");
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push(await createConversation(alice, bob));
    await sendMessage(alice, ids[1]!); // activity moves it to the front
    const expected = [ids[1], ids[4], ids[3], ids[2], ids[0]];
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call("GET", `/conversations?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, {
        token: alice.token,
      });
      expect(res.status).toBe(200);
      const page = await json(res);
      expect(page.conversations.length).toBeLessThanOrEqual(2);
      seen.push(...page.conversations.map((c: { conversationId: number }) => c.conversationId));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor !== null);
    expect(seen).toEqual(expected);
    expect(pages).toBe(3);
    for (const bad of ["limit=0", "limit=101", "limit=x", "cursor=not-ours", `cursor=${btoa("[1,2]")}`]) {
      const res = await call("GET", `/conversations?${bad}`, { token: alice.token });
      expect(res.status, bad).toBe(422);
    }
  });
});
