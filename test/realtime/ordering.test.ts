import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createConversation, registerUser, sendMessage } from "../helpers/api";
import { commitSilently } from "../helpers/messages";
import { conversationSocket, messagesOf, sleep } from "../helpers/sockets";

const room = (id: number) => env.CONVERSATION_ROOM.getByName(String(id));

describe("broadcast order", () => {
  it("holds a message that arrives before its predecessor and sends both in seq order", async () => {
    const alice = await registerUser("ord");
    const bob = await registerUser("ord");
    const id = await createConversation(alice, bob);
    const socket = await conversationSocket(id, bob.token);
    const first = await commitSilently(alice, id);
    const second = await commitSilently(alice, id);
    await room(id).publish(second);
    await sleep(50);
    expect(messagesOf(socket.frames)).toEqual([]);
    await room(id).publish(first);
    await room(id).publish(second); // a late duplicate call is dropped
    await socket.waitFor((f) => messagesOf(f).length >= 2);
    await sleep(50);
    expect(messagesOf(socket.frames).map((m) => m.seq)).toEqual([1, 2]);
  });

  it("fetches a message whose call never comes from D1 when the gap alarm fires", async () => {
    const alice = await registerUser("ord");
    const bob = await registerUser("ord");
    const id = await createConversation(alice, bob);
    const socket = await conversationSocket(id, bob.token);
    const lost = await commitSilently(alice, id);
    const third = await sendMessage(alice, id);
    expect(third.body.seq).toBe(2);
    await sleep(50);
    expect(messagesOf(socket.frames)).toEqual([]);
    expect(await runDurableObjectAlarm(room(id))).toBe(true);
    await socket.waitFor((f) => messagesOf(f).length === 2);
    expect(messagesOf(socket.frames).map((m) => m.messageId)).toEqual([lost.messageId, third.body.messageId]);
    expect(messagesOf(socket.frames)[0]).toEqual(lost);
  });

  it("keeps delivering in order to hibernated sockets after the object is evicted", async () => {
    const alice = await registerUser("ord");
    const bob = await registerUser("ord");
    const id = await createConversation(alice, bob);
    const sockets = await Promise.all([conversationSocket(id, alice.token), conversationSocket(id, bob.token)]);
    for (let i = 0; i < 3; i++) await sendMessage(alice, id);
    for (const s of sockets) await s.waitFor((f) => messagesOf(f).length === 3);
    await evictDurableObject(room(id));
    const posts = await Promise.all(Array.from({ length: 5 }, () => sendMessage(bob, id)));
    expect(posts.every((p) => p.status === 201)).toBe(true);
    for (const s of sockets) {
      await s.waitFor((f) => messagesOf(f).length === 8);
      expect(messagesOf(s.frames).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    }
    sockets[0]!.ws.send("ping");
    await sockets[0]!.waitFor((f) => f.includes("pong"));
  });
});
