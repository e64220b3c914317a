import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createConversation, history, registerUser, sendMessage } from "../helpers/api";
import { makeObjectThrow } from "../helpers/faults";
import { conversationSocket, messagesOf, sleep } from "../helpers/sockets";

describe("the broadcast failing", () => {
  it("still commits the message, answers 201, and the message is recoverable with `after`", async () => {
    const alice = await registerUser("bfl");
    const bob = await registerUser("bfl");
    const id = await createConversation(alice, bob);
    const socket = await conversationSocket(id, bob.token);
    const first = await sendMessage(alice, id);
    await socket.waitFor((f) => messagesOf(f).length === 1);
    const room = env.CONVERSATION_ROOM.getByName(String(id));
    const fault = await makeObjectThrow(room, "publish");
    const lost = await sendMessage(alice, id);
    expect(lost.status).toBe(201);
    await sleep(100);
    expect(messagesOf(socket.frames)).toHaveLength(1);
    const caughtUp = await history(bob, id, `after=${first.body.messageId}`);
    expect(caughtUp.map((m) => m.messageId)).toEqual([lost.body.messageId]);
    // Every retry failed too (each attempt is a call), and the give-up is logged with ids only.
    await expect
      .poll(() => fault.logged(), { timeout: 20_000 })
      .toContain(`broadcast failed for conversation ${id}: Error`);
  }, 30_000);

  it("retries a failed call, so the last message of a burst still reaches connected sockets", async () => {
    const alice = await registerUser("bfl");
    const bob = await registerUser("bfl");
    const id = await createConversation(alice, bob);
    const socket = await conversationSocket(id, bob.token);
    await sendMessage(alice, id);
    await socket.waitFor((f) => messagesOf(f).length === 1);
    await makeObjectThrow(env.CONVERSATION_ROOM.getByName(String(id)), "publish", 1);
    const last = await sendMessage(alice, id); // nothing follows it
    expect(last.status).toBe(201);
    await socket.waitFor((f) => messagesOf(f).length === 2);
    expect(messagesOf(socket.frames).map((m) => m.messageId)).toContain(last.body.messageId);
  });
});
