import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  activeDeviceIds,
  addParticipant,
  approve,
  call,
  createConversation,
  getConversation,
  json,
  loginPendingDevice,
  registerUser,
  rotate,
  sendMessage,
  type TestUser,
  wrapFor,
} from "../helpers/api";
import { makeObjectThrow } from "../helpers/faults";
import { commitSilently } from "../helpers/messages";
import { inboxSocket, messagesOf, sleep } from "../helpers/sockets";

const inbox = (userId: number) => env.USER_INBOX.getByName(String(userId));
const seqsOf = (frames: any[], conversationId: number) => messagesOf(frames, conversationId).map((m) => m.seq);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe("inbox socket (GET /ws?token=)", () => {
  it("gives every device of a user every event of every conversation, and nothing of others", async () => {
    const alice = await registerUser("inb");
    const bob = await registerUser("inb");
    const carol = await registerUser("inb");
    const [phone, laptop] = await Promise.all([inboxSocket(alice.token), inboxSocket(alice.token)]);
    const withBob = await createConversation(bob, alice);
    const withCarol = await createConversation(carol, alice);
    const notMine = await createConversation(bob, carol);
    await sendMessage(bob, withBob);
    await sendMessage(carol, withCarol);
    await sendMessage(bob, notMine);
    for (const device of [phone, laptop]) {
      await device.waitFor(
        (f) => messagesOf(f).length === 2 && f.filter((x) => x.type === "conversationCreated").length === 2,
      );
      await sleep(100);
      const created = device.frames.filter((x) => x.type === "conversationCreated").map((x) => x.data.conversationId);
      expect(created.sort()).toEqual([withBob, withCarol].sort());
      expect(
        messagesOf(device.frames)
          .map((m) => m.conversationId)
          .sort(),
      ).toEqual([withBob, withCarol].sort());
    }
  });

  it("sends conversationCreated to each device with that device's own wrapped key", async () => {
    const alice = await registerUser("inb");
    const bob = await registerUser("inb");
    const bobLaptop = await loginPendingDevice(bob, "laptop");
    expect((await approve(bob, bobLaptop)).status).toBe(200);
    const [phone, laptop] = await Promise.all([inboxSocket(bob.token), inboxSocket(bobLaptop.token)]);
    const devices = await activeDeviceIds(alice, alice, bob);
    expect(devices).toHaveLength(3);
    const keys = await Promise.all(devices.map((d) => wrapFor(alice, d)));
    const res = await call("POST", "/conversations", {
      token: alice.token,
      body: { participants: [alice.username, bob.username], keys },
    });
    expect(res.status).toBe(201);
    const { conversationId } = await json(res);
    for (const [socket, device] of [
      [phone, bob],
      [laptop, bobLaptop],
    ] as const) {
      await socket.waitFor((f) => f.some((x) => x.type === "conversationCreated"));
      const created = socket.frames.filter((x) => x.type === "conversationCreated");
      expect(created).toHaveLength(1);
      const own = keys.find((k) => k.deviceId === device.deviceId)!;
      // The conversation as that device reads it, down to its own key.
      expect(created[0].data).toEqual(await getConversation(device, conversationId));
      expect(created[0].data.key).toMatchObject({
        epoch: 1,
        wrappedKey: own.wrappedKey,
        signature: own.signature,
        wrappedBy: { userId: alice.userId, deviceId: alice.deviceId },
      });
    }
  });

  it("keeps per-conversation seq ascending with no gap or duplicate across 3 conversations with concurrent senders", async () => {
    const users = await Promise.all([0, 1, 2].map(() => registerUser("inb")));
    const [alice, bob, carol] = users as [TestUser, TestUser, TestUser];
    const memberships = [
      [alice, bob],
      [bob, alice, carol],
      [carol, alice],
    ];
    const conversations = await Promise.all(
      memberships.map(([creator, ...others]) => createConversation(creator!, ...others)),
    );
    const socket = await inboxSocket(alice.token);
    const perConversation = 12;
    const posts = conversations.flatMap((id, k) =>
      oneTo(perConversation).map((i) => sendMessage(memberships[k]![i % memberships[k]!.length]!, id)),
    );
    const results = await Promise.all(posts);
    expect(results.every((r) => r.status === 201)).toBe(true);
    await socket.waitFor((f) => messagesOf(f).length === conversations.length * perConversation, 10_000);
    await sleep(100);
    for (const id of conversations) expect(seqsOf(socket.frames, id)).toEqual(oneTo(perConversation));
  });

  it("tells a removed user about their removal and sends nothing more of that conversation", async () => {
    const alice = await registerUser("inb");
    const bob = await registerUser("inb");
    const id = await createConversation(alice, bob);
    const socket = await inboxSocket(bob.token);
    await sendMessage(alice, id);
    await socket.waitFor((f) => messagesOf(f).length === 1);
    expect(
      (await call("DELETE", `/conversations/${id}/participants/${bob.username}`, { token: alice.token })).status,
    ).toBe(204);
    await socket.waitFor((f) => f.some((x) => x.type === "participantRemoved"));
    expect(socket.frames.at(-1)).toEqual({
      type: "participantRemoved",
      data: { conversationId: id, userId: bob.userId, username: bob.username, by: alice.userId },
    });
    // Bob held epoch 1's key: the next message needs a new epoch, which Bob does not get.
    expect((await sendMessage(alice, id)).status).toBe(409);
    expect(await rotate(alice, id)).toBe(2);
    expect((await sendMessage(alice, id, { keyEpoch: 2 })).status).toBe(201);
    await sleep(200);
    expect(messagesOf(socket.frames)).toHaveLength(1);
    expect(socket.frames.some((x) => x.type === "epochChanged")).toBe(false);
    // Adding him back is itself an epoch commit (3).
    expect((await addParticipant(alice, id, bob)).status).toBe(201);
    await socket.waitFor((f) => f.filter((x) => x.type === "conversationCreated").length === 1);
    expect(socket.frames.at(-1).data).toMatchObject({ conversationId: id, epoch: 3, key: { epoch: 3 } });
    await sendMessage(alice, id, { keyEpoch: 3 });
    await socket.waitFor((f) => messagesOf(f).length === 2);
    expect(messagesOf(socket.frames).map((m) => m.seq)).toEqual([1, 3]);
  });

  it("holds a new conversation's second message until its late first one arrives (from D1 if need be)", async () => {
    const alice = await registerUser("inb");
    const bob = await registerUser("inb");
    const socket = await inboxSocket(bob.token);
    const id = await createConversation(alice, bob);
    await socket.waitFor((f) => f.some((x) => x.type === "conversationCreated"));
    const lost = await commitSilently(alice, id); // committed, its broadcast call never made
    const second = await sendMessage(alice, id);
    await sleep(100);
    expect(messagesOf(socket.frames)).toEqual([]);
    await runDurableObjectAlarm(env.CONVERSATION_ROOM.getByName(String(id)));
    await socket.waitFor((f) => messagesOf(f).length === 2);
    expect(messagesOf(socket.frames).map((m) => m.messageId)).toEqual([lost.messageId, second.body.messageId]);
  });

  it("a device that connects later gets what is sent from then on, in order (the rest via REST)", async () => {
    const alice = await registerUser("inb");
    const bob = await registerUser("inb");
    const id = await createConversation(alice, bob);
    for (let i = 0; i < 3; i++) await sendMessage(alice, id); // nobody of Bob's is connected
    await sleep(300);
    const socket = await inboxSocket(bob.token);
    await sendMessage(alice, id);
    await sendMessage(alice, id);
    await socket.waitFor((f) => messagesOf(f).length === 2);
    await sleep(400); // past the gap alarm: nothing older is replayed
    expect(seqsOf(socket.frames, id)).toEqual([4, 5]);
  });

  it("still delivers the next events in order after the inbox object is evicted", async () => {
    const alice = await registerUser("inb");
    const bob = await registerUser("inb");
    const id = await createConversation(alice, bob);
    const socket = await inboxSocket(bob.token);
    await sendMessage(alice, id);
    await socket.waitFor((f) => messagesOf(f).length === 1);
    await evictDurableObject(inbox(bob.userId));
    await Promise.all(oneTo(4).map(() => sendMessage(alice, id)));
    await socket.waitFor((f) => messagesOf(f).length === 5);
    expect(seqsOf(socket.frames, id)).toEqual(oneTo(5));
  });

  it("a throwing inbox neither fails the POST nor holds up other users' inboxes", async () => {
    const alice = await registerUser("inb");
    const bob = await registerUser("inb");
    const id = await createConversation(alice, bob);
    const [aliceSocket, bobSocket] = await Promise.all([inboxSocket(alice.token), inboxSocket(bob.token)]);
    const fault = await makeObjectThrow(inbox(bob.userId), "deliverMessages");
    const sent = await sendMessage(alice, id);
    expect(sent.status).toBe(201);
    await aliceSocket.waitFor((f) => messagesOf(f).length === 1);
    await sleep(100);
    expect(messagesOf(bobSocket.frames)).toEqual([]);
    const history = await json(await call("GET", `/conversations/${id}/messages`, { token: bob.token }));
    expect(history.map((m: any) => m.messageId)).toEqual([sent.body.messageId]);
    expect(fault.logged()).toContain(`inbox forward: 1 of 2 inboxes failed (conversation ${id})`);
  });
});
