import { describe, expect, it } from "vitest";
import {
  approve,
  call,
  createConversation,
  history,
  loginPendingDevice,
  messageBody,
  registerUser,
  sendMessage,
} from "../helpers/api";
import { conversationSocket, messagesOf, sleep } from "../helpers/sockets";

const ascendingWithoutGaps = (seqs: number[]) => seqs.every((seq, i) => i === 0 || seq === seqs[i - 1]! + 1);

describe("conversation socket broadcast", () => {
  it("delivers a committed message to every participant's sockets, the sender's other device included", async () => {
    const alice = await registerUser("bc");
    const bob = await registerUser("bc");
    const id = await createConversation(alice, bob);
    const aliceLaptop = await loginPendingDevice(alice, "laptop");
    expect((await approve(alice, aliceLaptop)).status).toBe(200);
    const [aliceSocket, aliceSecondDevice, bobSocket] = await Promise.all([
      conversationSocket(id, alice.token),
      conversationSocket(id, aliceLaptop.token),
      conversationSocket(id, bob.token),
    ]);
    const body = messageBody(id, { associatedData: "AAEC", clientMessageId: "m-1" });
    const res = await call("POST", "/messages", { token: alice.token, body });
    expect(res.status).toBe(201);
    const { messageId, seq, timestamp } = (await res.json()) as any;
    // The frame carries the MessageResponse exactly as history serves it.
    const [stored] = await history(bob, id);
    expect(stored).toMatchObject({
      messageId,
      seq,
      timestamp,
      conversationId: id,
      senderId: alice.userId,
      senderUsername: alice.username,
      senderDeviceId: alice.deviceId,
      keyEpoch: 1,
      nonce: body.nonce,
      ciphertext: body.ciphertext,
      authTag: body.authTag,
      associatedData: "AAEC",
      signature: body.signature,
      clientMessageId: "m-1",
      deleted: false,
    });
    for (const socket of [aliceSocket, aliceSecondDevice, bobSocket]) {
      await socket.waitFor((f) => messagesOf(f).length === 1);
      expect(socket.frames).toEqual([{ type: "newMessage", data: stored }]);
    }
  });

  it("sends nothing to sockets of other conversations", async () => {
    const alice = await registerUser("bc");
    const bob = await registerUser("bc");
    const carol = await registerUser("bc");
    const ours = await createConversation(alice, bob);
    const theirs = await createConversation(bob, carol);
    const carolSocket = await conversationSocket(theirs, carol.token);
    const aliceSocket = await conversationSocket(ours, alice.token);
    await sendMessage(bob, ours);
    await aliceSocket.waitFor((f) => messagesOf(f).length === 1);
    await sleep(100);
    expect(carolSocket.frames).toEqual([]);
  });

  it("does not broadcast an idempotent retry again", async () => {
    const alice = await registerUser("bc");
    const bob = await registerUser("bc");
    const id = await createConversation(alice, bob);
    const bobSocket = await conversationSocket(id, bob.token);
    const first = await sendMessage(alice, id, { clientMessageId: "retry-me" });
    const retry = await sendMessage(alice, id, { clientMessageId: "retry-me" });
    expect([first.status, retry.status]).toEqual([201, 200]);
    await sendMessage(alice, id);
    await bobSocket.waitFor((f) => messagesOf(f).length === 2);
    await sleep(100);
    expect(messagesOf(bobSocket.frames).map((m) => m.seq)).toEqual([1, 2]);
  });

  it("answers ping with pong and anything else with an error frame, keeping the socket open", async () => {
    const alice = await registerUser("bc");
    const bob = await registerUser("bc");
    const id = await createConversation(alice, bob);
    const socket = await conversationSocket(id, alice.token);
    socket.ws.send("ping");
    await socket.waitFor((f) => f.includes("pong"));
    socket.ws.send('{"type":"newMessage"}');
    await socket.waitFor((f) => f.some((x) => x?.type === "error"));
    expect(socket.frames.find((x) => x?.type === "error").error.code).toBe("bad_request");
    socket.ws.send("ping");
    await socket.waitFor((f) => f.filter((x) => x === "pong").length === 2);
    await sendMessage(bob, id);
    await socket.waitFor((f) => messagesOf(f).length === 1);
  });

  it("keeps every socket in strictly ascending seq with no gap or duplicate under 32 concurrent senders", async () => {
    const users = await Promise.all(Array.from({ length: 4 }, () => registerUser("bc")));
    const id = await createConversation(users[0]!, ...users.slice(1));
    const sockets = await Promise.all(users.map((u) => conversationSocket(id, u.token)));
    const posts = await Promise.all(Array.from({ length: 32 }, (_, i) => sendMessage(users[i % users.length]!, id)));
    expect(posts.every((p) => p.status === 201)).toBe(true);
    expect(posts.map((p) => p.body.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    for (const socket of sockets) {
      await socket.waitFor((f) => messagesOf(f).length >= 32, 10_000);
      const seqs = messagesOf(socket.frames).map((m) => m.seq);
      expect(seqs).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
      expect(ascendingWithoutGaps(seqs)).toBe(true);
    }
  });

  it("refuses the socket past the per-object cap with 1013", async () => {
    const alice = await registerUser("bc");
    const bob = await registerUser("bc");
    const id = await createConversation(alice, bob);
    const cap = 40; // MAX_SOCKETS_PER_OBJECT in vitest.config.ts
    // A device holds at most 8 sockets on one object: alice fills the room from 5 devices.
    const devices = [alice];
    for (let i = 0; i < 4; i++) {
      const pending = await loginPendingDevice(alice, `device ${i}`);
      expect((await approve(alice, pending)).status).toBe(200);
      devices.push(pending);
    }
    const held = await Promise.all(
      Array.from({ length: cap }, (_, i) => conversationSocket(id, devices[i % devices.length]!.token)),
    );
    const extra = await conversationSocket(id, bob.token);
    expect((await extra.closed).code).toBe(1013);
    held[0]!.ws.close(1000, "done");
    await held[0]!.closed;
    await sleep(50);
    const retry = await conversationSocket(id, bob.token);
    await sendMessage(alice, id);
    await retry.waitFor((f) => messagesOf(f).length === 1);
  });
});
