import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { IDENTITY_HEADER, LAST_SEQ_HEADER } from "../../src/realtime/sockets";
import { addParticipant, call, createConversation, getConversation, registerUser, type TestUser } from "../helpers/api";
import { makeObjectThrow } from "../helpers/faults";
import { conversationSocket, sleep } from "../helpers/sockets";

const room = (id: number) => env.CONVERSATION_ROOM.getByName(String(id));
const remove = (by: TestUser, id: number, who: TestUser) =>
  call("DELETE", `/conversations/${id}/participants/${who.username}`, { token: by.token });

/** Resolves with the close, or "still open" if the socket is still open after `ms`. */
const closedWithin = (closed: Promise<{ code: number }>, ms: number) =>
  Promise.race([closed.then((c) => c.code), sleep(ms).then(() => "still open" as const)]);

describe("a removed participant keeps no conversation socket", () => {
  it("refuses a socket the Worker admitted before a removal the room already knows of", async () => {
    const alice = await registerUser("rmv");
    const bob = await registerUser("rmv");
    const id = await createConversation(alice, bob);
    // The Worker checked Bob's participation and built the forwarded upgrade (as routes/ws.ts does)...
    const identity = {
      userId: bob.userId,
      deviceId: bob.deviceId,
      sessionId: bob.sessionId,
      exp: Math.floor(Date.now() / 1000) + 600,
    };
    const forwarded = new Request(`http://parley.test/ws?conversationId=${id}`, {
      headers: { Upgrade: "websocket", [IDENTITY_HEADER]: JSON.stringify(identity), [LAST_SEQ_HEADER]: "0" },
    });
    // ...then the removal committed and its close ran on the room, before the upgrade got there.
    expect((await remove(alice, id, bob)).status).toBe(204);
    const res = await room(id).fetch(forwarded);
    const ws = res.webSocket!;
    const closed = new Promise<{ code: number }>((resolve) => ws.addEventListener("close", (e) => resolve(e)));
    ws.accept();
    expect(await closedWithin(closed, 1500)).toBe(4003);
  });

  it("still admits a removed user who was added back", async () => {
    const alice = await registerUser("rmv");
    const bob = await registerUser("rmv");
    const id = await createConversation(alice, bob);
    expect((await remove(alice, id, bob)).status).toBe(204);
    const readded = await addParticipant(alice, id, bob); // adding back is an epoch commit
    expect(readded.status).toBe(201);
    const socket = await conversationSocket(id, bob.token);
    socket.ws.send("ping");
    await socket.waitFor((f) => f.includes("pong"));
  });

  it("retries the close when the room's membership call fails", async () => {
    const alice = await registerUser("rmv");
    const bob = await registerUser("rmv");
    const id = await createConversation(alice, bob);
    const socket = await conversationSocket(id, bob.token);
    const fault = await makeObjectThrow(room(id), "membership", 1);
    expect((await remove(alice, id, bob)).status).toBe(204);
    expect(await closedWithin(socket.closed, 5000)).toBe(4003);
    expect(fault.logged()).toContain(`membership broadcast failed for conversation ${id}: Error`);
  });

  it("a retried removal that arrives after the user was added back leaves their new socket open", async () => {
    const alice = await registerUser("rmv");
    const bob = await registerUser("rmv");
    const id = await createConversation(alice, bob);
    const firstJoin = (await getConversation(alice, id)).participants.find(
      (p: any) => p.userId === bob.userId,
    ).joinedAt;
    expect((await remove(alice, id, bob)).status).toBe(204);
    const readded = await addParticipant(alice, id, bob); // adding back is an epoch commit
    expect(readded.status).toBe(201);
    const socket = await conversationSocket(id, bob.token);
    const frame = {
      type: "participantRemoved" as const,
      data: { conversationId: id, userId: bob.userId, username: bob.username, by: alice.userId },
    };
    await room(id).membership({ frame, removedUserId: bob.userId, joinedAt: firstJoin });
    expect(await closedWithin(socket.closed, 500)).toBe("still open");
  });
});
