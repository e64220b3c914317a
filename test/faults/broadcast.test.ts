import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished } from "vitest";
import type { ConversationRoom } from "../../src/realtime/conversation-room";
import { createConversation, history, registerUser, sendMessage } from "../helpers/api";
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
    const restore = await runInDurableObject(room, (instance: ConversationRoom) => {
      const proto = Object.getPrototypeOf(instance) as ConversationRoom;
      const original = proto.publish;
      proto.publish = async function (this: ConversationRoom, message) {
        if (message.conversationId === id) throw new Error("broadcast down");
        return original.call(this, message);
      };
      return () => {
        proto.publish = original;
      };
    });
    onTestFinished(restore);
    const lost = await sendMessage(alice, id);
    expect(lost.status).toBe(201);
    await sleep(100);
    expect(messagesOf(socket.frames)).toHaveLength(1);
    const caughtUp = await history(bob, id, `after=${first.body.messageId}`);
    expect(caughtUp.map((m) => m.messageId)).toEqual([lost.body.messageId]);
  });
});
