import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { messageFrame } from "../../src/realtime/frames";
import { MAX_GAP_ROUNDS, MAX_GAP_WAIT_MS } from "../../src/realtime/socket-hub";
import { createConversation, registerUser } from "../helpers/api";
import { commitSilently } from "../helpers/messages";
import { conversationSocket, inboxSocket, messagesOf, sleep } from "../helpers/sockets";

const inbox = (userId: number) => env.USER_INBOX.getByName(String(userId));
const room = (id: number) => env.CONVERSATION_ROOM.getByName(String(id));

/** The object's pending alarm and how many frames it holds behind a gap. */
const gapState = (stub: DurableObjectStub) =>
  runInDurableObject(stub, async (_instance, state) => ({
    alarm: await state.storage.getAlarm(),
    held: [...state.storage.kv.list({ prefix: "held:" })].length,
  }));

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !(await check()); i++) await sleep(20);
}

describe("the gap alarm", () => {
  it("stops in an inbox whose last device left while a frame was held: nothing held, no alarm", async () => {
    const alice = await registerUser("gap");
    const bob = await registerUser("gap");
    const id = await createConversation(alice, bob);
    const socket = await inboxSocket(bob.token);
    const first = await commitSilently(alice, id);
    await inbox(bob.userId).deliverMessages([messageFrame(first)]);
    // seq 5 of a conversation with one message: a gap that D1 cannot fill.
    await inbox(bob.userId).deliverMessages([messageFrame({ ...first, seq: first.seq + 4 })]);
    expect((await gapState(inbox(bob.userId))).held).toBe(1);
    socket.ws.close(1000, "bye");
    await socket.closed;
    await until(() => runInDurableObject(inbox(bob.userId), async (_i, state) => state.getWebSockets().length === 0));
    await runDurableObjectAlarm(inbox(bob.userId));
    expect(await gapState(inbox(bob.userId))).toEqual({ alarm: null, held: 0 });
  });

  it("backs off while a room's gap cannot be filled, then releases the held frame and stops", async () => {
    const alice = await registerUser("gap");
    const bob = await registerUser("gap");
    const id = await createConversation(alice, bob);
    const socket = await conversationSocket(id, bob.token);
    const first = await commitSilently(alice, id);
    await room(id).publish(first);
    const beyond = { ...first, seq: first.seq + 4 };
    await room(id).publish(beyond);
    const waits: number[] = [];
    for (let i = 0; i < 30 && (await runDurableObjectAlarm(room(id))); i++) {
      const { alarm } = await gapState(room(id));
      if (alarm !== null) waits.push(alarm - Date.now());
    }
    expect(await gapState(room(id))).toEqual({ alarm: null, held: 0 });
    expect(waits.length).toBeLessThan(MAX_GAP_ROUNDS);
    expect(Math.max(...waits)).toBeGreaterThan(MAX_GAP_WAIT_MS / 2);
    await socket.waitFor((f) => messagesOf(f).length === 2);
    expect(messagesOf(socket.frames).map((m) => m.seq)).toEqual([first.seq, beyond.seq]);
  });
});
