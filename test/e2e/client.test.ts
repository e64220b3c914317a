// The client library (`parley/client`) against a real `wrangler dev`: accounts with an account key
// and signed devices, a second device linked by approval, conversations with per-device wrapped
// keys, signed encrypted messages, idempotent retries, rotation after a removal, sessions that
// refresh, and live subscriptions that catch up, reconnect, and stop with a reason.
import { randomBytes } from "node:crypto";
import { type FetchLike, fingerprint, fromBase64, ParleyError, type ServerFrame } from "parley/client";
import { describe, expect, it } from "vitest";
import { uniqueName } from "./helpers.js";
import { account, linkDevice, newClient, trackSubscriptions, until } from "./library.js";

const track = trackSubscriptions();

describe("parley/client against wrangler dev: accounts and devices", () => {
  it("registers with an account key and a signed device, and looks users up", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const found = await alice.client.lookupUser(bob.username);
    const me = await bob.client.me();
    expect(found).toMatchObject({ userId: bob.userId, accountKey: me.accountKey });
    expect(found.devices.map((d) => d.deviceId)).toEqual([bob.deviceId]);
    expect(fromBase64(found.accountKey).byteLength).toBe(32);
    expect(await fingerprint(fromBase64(found.accountKey))).toMatch(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
    expect(await alice.client.identity(bob.userId)).toBeDefined(); // pinned on first use
    await expect(alice.client.lookupUser(uniqueName("nobody"))).rejects.toMatchObject({
      status: 404,
      code: "not_found",
    });
    // A wrong password is the API's 401, surfaced as a ParleyError.
    await expect(newClient().login(alice.username, "wrong password!")).rejects.toBeInstanceOf(ParleyError);
  });

  it("links a second device: pending, approved with matching codes, then it reads and sends", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const { conversationId } = await alice.client.createConversation([bob.username], { title: "plans" });
    await bob.client.acceptConversation(conversationId); // a message request until then
    const early = await bob.client.sendMessage(conversationId, "before the laptop");
    expect(early.keyEpoch).toBe(2); // committed at creation: bob did not have to rotate
    await alice.client.rotateKey(conversationId);
    const later = await alice.client.sendMessage(conversationId, "a later epoch, still before the laptop");
    expect(later.keyEpoch).toBe(3);
    const laptop = await linkDevice(alice);
    expect((await alice.client.devices()).map((d) => [d.deviceId, d.status])).toEqual(
      expect.arrayContaining([
        [alice.deviceId, "active"],
        [laptop.deviceId, "active"],
      ]),
    );
    // Epoch 3's key came with the approval body, epoch 2's in the provisioning envelope.
    const [second, first] = await laptop.client.messages(conversationId);
    expect(first).toMatchObject({ ok: true, text: "before the laptop", senderUsername: bob.username, keyEpoch: 2 });
    expect(second).toMatchObject({ ok: true, text: "a later epoch, still before the laptop", keyEpoch: 3 });
    await laptop.client.sendMessage(conversationId, "from the laptop");
    const history = await bob.client.messages(conversationId, { limit: 10 });
    expect(history[0]).toMatchObject({ ok: true, text: "from the laptop", senderDeviceId: laptop.deviceId });
  });
});

describe("parley/client against wrangler dev: conversations and messages", () => {
  it("stores only signed ciphertext bound to the conversation, sender device and epoch", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const carol = await account("cl_carol");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    const secret = `the eagle lands at ${randomBytes(6).toString("hex")}`;
    const sent = await alice.client.sendMessage(conversationId, secret);
    const [raw] = await bob.client.rawMessages(conversationId);
    expect(raw).toMatchObject({ messageId: sent.messageId, senderDeviceId: alice.deviceId, keyEpoch: sent.keyEpoch });
    const stored = Buffer.concat([fromBase64(raw!.nonce!), fromBase64(raw!.ciphertext!), fromBase64(raw!.authTag!)]);
    expect(stored.includes(Buffer.from(secret))).toBe(false);
    expect(fromBase64(raw!.nonce!).byteLength).toBe(12);
    expect(fromBase64(raw!.authTag!).byteLength).toBe(16);
    expect(fromBase64(raw!.signature!).byteLength).toBe(64);
    const ad = Buffer.from(fromBase64(raw!.associatedData!));
    expect(ad.byteLength).toBe(46);
    expect(ad.subarray(0, 18).toString("latin1")).toBe("parley/message/v2\0");
    expect(await bob.client.decrypt(raw!)).toMatchObject({ ok: true, text: secret });
    // Carol is not in it: the server refuses her, and the message is useless to her anyway.
    await expect(carol.client.getConversation(conversationId)).rejects.toMatchObject({ status: 403 });
    expect(await carol.client.decrypt(raw!)).toMatchObject({ ok: false });
  });

  it("retries a send whose answer was lost without storing it twice", async () => {
    let dropped = 0;
    // The first POST /messages reaches the server and commits, but its answer is "lost".
    const lossy: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      if (init?.method === "POST" && url.endsWith("/messages") && dropped === 0) {
        dropped++;
        await res.arrayBuffer();
        throw new TypeError("fetch failed (simulated lost answer)");
      }
      return res;
    };
    const alice = await account("cl_alice", { fetch: lossy, retry: { baseDelayMs: 10 } });
    const bob = await account("cl_bob");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    const sent = await alice.client.sendMessage(conversationId, "exactly once");
    expect(dropped).toBe(1);
    const history = await bob.client.messages(conversationId);
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({
      messageId: sent.messageId,
      clientMessageId: sent.clientMessageId,
      text: "exactly once",
    });
    // An explicit repeat with the same clientMessageId is the same message too.
    const again = await alice.client.sendMessage(conversationId, "exactly once", {
      clientMessageId: sent.clientMessageId,
    });
    expect(again.messageId).toBe(sent.messageId);
  });

  it("adds a participant who reads from their join on, and the inbox announces it", async () => {
    const alice = await account("cl_alice");
    const bob = await account("cl_bob");
    const dave = await account("cl_dave");
    const frames: ServerFrame[] = [];
    const inbox = track(dave.client.watchInbox((f) => void frames.push(f)));
    await until(() => inbox.state === "open", "dave's inbox");
    const { conversationId } = await alice.client.createConversation([bob.username]);
    await bob.client.acceptConversation(conversationId);
    await bob.client.sendMessage(conversationId, "before dave");
    await alice.client.addParticipant(conversationId, dave.username);
    await until(
      () => frames.some((f) => f.type === "conversationCreated" && f.data.conversationId === conversationId),
      "conversationCreated",
    );
    expect(await dave.client.messages(conversationId)).toEqual([]); // nothing from before the join
    await bob.client.sendMessage(conversationId, "hi dave");
    const [first] = await dave.client.messages(conversationId);
    expect(first).toMatchObject({ ok: true, text: "hi dave", senderUsername: bob.username });
    expect(first!.keyEpoch).toBe((await dave.client.getConversation(conversationId)).epoch);
  });
});
