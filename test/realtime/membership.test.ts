import { describe, expect, it } from "vitest";
import { addParticipant, call, createConversation, registerUser, sendMessage } from "../helpers/api";
import { conversationSocket, messagesOf, sleep } from "../helpers/sockets";
import { signToken } from "../helpers/tokens";

describe("membership and token lifetime on the conversation socket", () => {
  it("tells everyone about a removal, then closes the removed user's sockets with 4003", async () => {
    const alice = await registerUser("mem");
    const bob = await registerUser("mem");
    const carol = await registerUser("mem");
    const id = await createConversation(alice, bob, carol);
    const [aliceSocket, bobSocket] = await Promise.all([
      conversationSocket(id, alice.token),
      conversationSocket(id, bob.token),
    ]);
    const res = await call("DELETE", `/conversations/${id}/participants/${bob.username}`, { token: alice.token });
    expect(res.status).toBe(204);
    const event = {
      type: "participantRemoved",
      data: { conversationId: id, userId: bob.userId, username: bob.username, by: alice.userId },
    };
    const closed = await bobSocket.closed;
    expect(closed.code).toBe(4003);
    expect(bobSocket.frames).toEqual([event]);
    await aliceSocket.waitFor((f) => f.length === 1);
    expect(aliceSocket.frames).toEqual([event]);
    expect((await call("GET", `/conversations/${id}/messages`, { token: bob.token })).status).toBe(403);
    expect((await sendMessage(bob, id)).status).toBe(403);
    const again = await conversationSocket(id, bob.token);
    expect((await again.closed).code).toBe(1008);
  });

  it("announces an added participant, who can then connect and receive", async () => {
    const alice = await registerUser("mem");
    const bob = await registerUser("mem");
    const dave = await registerUser("mem");
    const id = await createConversation(alice, bob);
    const bobSocket = await conversationSocket(id, bob.token);
    const added = await addParticipant(alice, id, dave); // an epoch commit: epoch 2
    expect(added.status).toBe(201);
    await bobSocket.waitFor((f) => f.length === 2);
    expect(bobSocket.frames).toEqual([
      {
        type: "participantAdded",
        data: { conversationId: id, userId: dave.userId, username: dave.username, by: alice.userId },
      },
      {
        type: "epochChanged",
        data: { conversationId: id, epoch: 2, by: { userId: alice.userId, deviceId: alice.deviceId } },
      },
    ]);
    const daveSocket = await conversationSocket(id, dave.token);
    expect((await sendMessage(alice, id, { keyEpoch: 2 })).status).toBe(201);
    await daveSocket.waitFor((f) => messagesOf(f).length === 1);
  });

  it("closes a socket with 1008 'token expired' instead of sending it the next event after expiry", async () => {
    const alice = await registerUser("mem");
    const bob = await registerUser("mem");
    const id = await createConversation(alice, bob);
    const shortLived = await signToken(bob, { expiresAt: Math.floor(Date.now() / 1000) + 2 });
    const socket = await conversationSocket(id, shortLived);
    await sendMessage(alice, id);
    await socket.waitFor((f) => messagesOf(f).length === 1);
    await sleep(2100);
    await sendMessage(alice, id);
    const closed = await socket.closed;
    expect(closed).toEqual({ code: 1008, reason: "token expired" });
    expect(messagesOf(socket.frames)).toHaveLength(1);
  });
});
