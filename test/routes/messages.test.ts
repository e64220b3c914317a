import { beforeAll, describe, expect, it } from "vitest";
import {
  b64,
  call,
  createConversation,
  errorOf,
  getConversation,
  history,
  ISO_MS,
  json,
  loginPendingDevice,
  messageBody,
  randomBytes,
  registerUser,
  registerUsers,
  rotate,
  sendMessage,
  type TestUser,
} from "../helpers/api";

// POST /messages is rate limited per user (60 in 10 s): tests that post a lot use their own users.
let alice: TestUser;
let bob: TestUser;
let outsider: TestUser;

beforeAll(async () => {
  [alice, bob, outsider] = await registerUsers("alice", "bob", "outsider");
});

const post = (user: TestUser, body: unknown) => call("POST", "/messages", { token: user.token, body });
/** `length` bytes as base64: "++//" (0xfb 0xef 0xff) first, so "+" and "/" must survive too, then random. */
const bytes = (length: number) => b64([0xfb, 0xef, 0xff, ...randomBytes(Math.max(0, length - 3))].slice(0, length));

describe("POST /messages", () => {
  it("answers 201 with messageId, seq and an ISO timestamp; seq counts up from 1", async () => {
    const id = await createConversation(alice, bob);
    const first = await post(alice, messageBody(id));
    expect(first.status).toBe(201);
    const body = await json(first);
    expect(body).toEqual({ messageId: expect.any(Number), seq: 1, timestamp: expect.stringMatching(ISO_MS) });
    expect(Math.abs(Date.parse(body.timestamp) - Date.now())).toBeLessThan(60_000);
    const second = await sendMessage(bob, id);
    expect(second.status).toBe(201);
    expect(second.body.seq).toBe(2);
    expect(second.body.messageId).toBeGreaterThan(body.messageId);
  });

  it("returns every byte as sent, with the sender and metadata", async () => {
    const id = await createConversation(alice, bob);
    const sent = {
      conversationId: id,
      keyEpoch: 1,
      nonce: bytes(24),
      ciphertext: bytes(1000),
      authTag: bytes(16),
      associatedData: bytes(100),
      signature: bytes(64),
      clientMessageId: "c-1",
    };
    const res = await post(alice, sent);
    expect(res.status).toBe(201);
    const { messageId, seq, timestamp } = await json(res);
    const plain = await sendMessage(bob, id);
    const [newest, oldest] = await history(bob, id);
    expect(oldest).toEqual({
      messageId,
      seq,
      timestamp,
      senderId: alice.userId,
      senderUsername: alice.username,
      senderDeviceId: alice.deviceId,
      attachments: [],
      relatesTo: null,
      expiresAt: null,
      deleted: false,
      ...sent,
    });
    expect(newest).toMatchObject({
      messageId: plain.body.messageId,
      senderId: bob.userId,
      senderDeviceId: bob.deviceId,
      keyEpoch: 1,
      associatedData: null,
      clientMessageId: null,
    });
  });

  it("accepts the bounds of every field, byte for byte", async () => {
    const id = await createConversation(alice, bob);
    const cases = [
      {
        nonce: bytes(12),
        ciphertext: bytes(1),
        authTag: bytes(16),
        associatedData: bytes(1024),
        signature: bytes(64),
        clientMessageId: "x",
      },
      {
        nonce: bytes(24),
        ciphertext: bytes(64 * 1024),
        authTag: bytes(16),
        associatedData: bytes(1),
        signature: bytes(64),
        clientMessageId: "m".repeat(64),
      },
      {
        nonce: bytes(16),
        ciphertext: bytes(2),
        authTag: bytes(16),
        associatedData: "",
        signature: bytes(64),
        clientMessageId: "\u00e9\u{1f512}",
      },
    ];
    for (const fields of cases) {
      expect((await post(alice, { conversationId: id, keyEpoch: 1, ...fields })).status).toBe(201);
    }
    const stored = (await history(alice, id))
      .reverse()
      .map(({ nonce, ciphertext, authTag, associatedData, signature, clientMessageId }) => ({
        nonce,
        ciphertext,
        authTag,
        associatedData,
        signature,
        clientMessageId,
      }));
    expect(stored).toEqual(cases);
  });

  describe("validation", () => {
    let id: number;
    let sender: TestUser;
    beforeAll(async () => {
      sender = await registerUser("msg");
      id = await createConversation(sender, bob);
    });

    const invalid: [string, (id: number) => Record<string, unknown>, string][] = [
      ["a nonce of 11 bytes", () => ({ nonce: bytes(11) }), "nonce"],
      ["a nonce of 25 bytes", () => ({ nonce: bytes(25) }), "nonce"],
      ["an unpadded nonce", () => ({ nonce: b64(randomBytes(13)).replace(/=+$/, "") }), "nonce"],
      ["a missing nonce", () => ({ nonce: undefined }), "nonce"],
      ["an authTag of 15 bytes", () => ({ authTag: bytes(15) }), "authTag"],
      ["an authTag of 17 bytes", () => ({ authTag: bytes(17) }), "authTag"],
      ["a missing authTag", () => ({ authTag: undefined }), "authTag"],
      ["an empty ciphertext", () => ({ ciphertext: "" }), "ciphertext"],
      ["a ciphertext of 64 KiB + 1", () => ({ ciphertext: bytes(64 * 1024 + 1) }), "ciphertext"],
      ["a urlsafe ciphertext", () => ({ ciphertext: bytes(30).replace(/\+/g, "-").replace(/\//g, "_") }), "ciphertext"],
      ["a ciphertext that is not a string", () => ({ ciphertext: [1, 2, 3] }), "ciphertext"],
      ["associatedData of 1025 bytes", () => ({ associatedData: bytes(1025) }), "associatedData"],
      ["associatedData that is not base64", () => ({ associatedData: "a b c d" }), "associatedData"],
      ["an empty clientMessageId", () => ({ clientMessageId: "" }), "clientMessageId"],
      ["a clientMessageId of 65 characters", () => ({ clientMessageId: "m".repeat(65) }), "clientMessageId"],
      ["a clientMessageId that is not a string", () => ({ clientMessageId: 5 }), "clientMessageId"],
      ["a conversationId as a string", (id) => ({ conversationId: String(id) }), "conversationId"],
      ["a conversationId of 0", () => ({ conversationId: 0 }), "conversationId"],
      ["a negative conversationId", () => ({ conversationId: -1 }), "conversationId"],
      ["a fractional conversationId", (id) => ({ conversationId: id + 0.5 }), "conversationId"],
      ["a missing conversationId", () => ({ conversationId: undefined }), "conversationId"],
      ["a conversationId beyond 2^53", () => ({ conversationId: 2 ** 60 }), "conversationId"],
      ["a signature of 63 bytes", () => ({ signature: bytes(63) }), "signature"],
      ["a signature of 65 bytes", () => ({ signature: bytes(65) }), "signature"],
      ["a signature that is not base64", () => ({ signature: "%".repeat(88) }), "signature"],
      ["a missing signature", () => ({ signature: undefined }), "signature"],
      ["a keyEpoch of 0", () => ({ keyEpoch: 0 }), "keyEpoch"],
      ["a keyEpoch as a string", () => ({ keyEpoch: "1" }), "keyEpoch"],
      ["a missing keyEpoch", () => ({ keyEpoch: undefined }), "keyEpoch"],
    ];

    it.each(invalid)("answers 422 for %s and stores nothing", async (_, change, path) => {
      const res = await post(sender, { ...messageBody(id), ...change(id) });
      expect(res.status).toBe(422);
      const error = await errorOf(res);
      expect(error.code).toBe("validation_failed");
      expect(error.details?.map((d) => d.path)).toContain(path);
      expect(await history(sender, id)).toEqual([]);
      expect((await getConversation(sender, id)).lastMessageId).toBeNull();
    });
  });

  it("answers 403 to a non-participant, for an existing or a missing conversation, and stores nothing", async () => {
    const id = await createConversation(alice, bob);
    const existing = await post(outsider, messageBody(id));
    const missing = await post(outsider, messageBody(2_000_000_000));
    expect([existing.status, missing.status]).toEqual([403, 403]);
    expect((await errorOf(existing.clone())).code).toBe("forbidden");
    expect(await json(existing)).toEqual(await json(missing));
    expect(await history(alice, id)).toEqual([]);
  });
});

describe("key epochs and devices", () => {
  it("answers 409 for a keyEpoch that is not current, saying which, and stores nothing", async () => {
    const [alice, bob] = await registerUsers("ep", "ep");
    const id = await createConversation(alice, bob);
    const epoch = await rotate(bob, id);
    for (const keyEpoch of [1, epoch + 1]) {
      const res = await post(alice, messageBody(id, { keyEpoch }));
      expect(res.status, String(keyEpoch)).toBe(409);
      const error = await errorOf(res);
      expect(error.code).toBe("conflict");
      expect(error.details).toEqual([{ path: "keyEpoch", message: `current is ${epoch}` }]);
    }
    expect(await history(alice, id)).toEqual([]);
    const sent = await sendMessage(alice, id, { keyEpoch: epoch });
    expect(sent.status).toBe(201);
    expect((await history(bob, id))[0]).toMatchObject({ keyEpoch: epoch, senderDeviceId: alice.deviceId });
  });

  it("answers a retry of a committed message 200 with its first answer even after the epoch changed", async () => {
    const [alice, bob] = await registerUsers("ep", "ep");
    const id = await createConversation(alice, bob);
    const body = messageBody(id, { clientMessageId: "before-rotation" });
    const first = await post(alice, body);
    expect(first.status).toBe(201);
    const answer = await json(first);
    await rotate(bob, id);
    const retry = await post(alice, body);
    expect(retry.status).toBe(200);
    expect(await json(retry)).toEqual(answer);
    expect(await history(bob, id)).toHaveLength(1);
  });

  it("answers 403 device not linked yet to a pending device of a participant, and stores nothing", async () => {
    const [alice, bob] = await registerUsers("ep", "ep");
    const id = await createConversation(alice, bob);
    const phone = await loginPendingDevice(alice);
    const res = await post(phone, messageBody(id));
    expect(res.status).toBe(403);
    expect(await errorOf(res)).toMatchObject({ code: "forbidden", message: "device not linked yet" });
    expect(await history(alice, id)).toEqual([]);
  });
});

describe("idempotent retries", () => {
  it("answers a retry with 200 and the first answer, and stores one message", async () => {
    const id = await createConversation(alice, bob);
    const original = messageBody(id, { clientMessageId: "retry-1" });
    const first = await post(alice, original);
    expect(first.status).toBe(201);
    const firstBody = await json(first);
    // Even a retry whose bytes differ stores nothing and answers the first call's result.
    const retry = await post(alice, messageBody(id, { clientMessageId: "retry-1" }));
    expect(retry.status).toBe(200);
    expect(await json(retry)).toEqual(firstBody);
    const stored = await history(bob, id);
    expect(stored.map((m) => m.messageId)).toEqual([firstBody.messageId]);
    expect(stored[0].ciphertext).toBe(original.ciphertext);
    // The retry took no seq: the next message follows without a gap.
    expect((await sendMessage(alice, id)).body.seq).toBe(2);
  });

  it("treats the same clientMessageId from another sender or in another conversation as a new message", async () => {
    const id = await createConversation(alice, bob);
    const other = await createConversation(alice, bob);
    const first = await sendMessage(alice, id, { clientMessageId: "shared" });
    const fromBob = await sendMessage(bob, id, { clientMessageId: "shared" });
    const elsewhere = await sendMessage(alice, other, { clientMessageId: "shared" });
    expect([first.status, fromBob.status, elsewhere.status]).toEqual([201, 201, 201]);
    expect(new Set([first, fromBob, elsewhere].map((r) => r.body.messageId)).size).toBe(3);
    expect([fromBob.body.seq, elsewhere.body.seq]).toEqual([2, 1]);
    expect(await history(alice, id)).toHaveLength(2);
    expect(await history(alice, other)).toHaveLength(1);
  });

  it("stores one message when 20 retries race", async () => {
    const [alice, bob] = await registerUsers("racer", "racer");
    const id = await createConversation(alice, bob);
    const body = messageBody(id, { clientMessageId: "race" });
    const responses = await Promise.all(Array.from({ length: 20 }, () => post(alice, body)));
    const statuses = responses.map((r) => r.status).sort((a, b) => a - b);
    expect(statuses).toEqual([...Array<number>(19).fill(200), 201]);
    const bodies = await Promise.all(responses.map((r) => json(r)));
    for (const b of bodies) expect(b).toEqual(bodies[0]);
    const stored = await history(bob, id);
    expect(stored.map((m) => m.messageId)).toEqual([bodies[0].messageId]);
    expect((await sendMessage(bob, id)).body.seq).toBe(2);
  });
});

describe("seq under concurrency", () => {
  it("gives 36 concurrent messages from 3 senders the seqs 1..36, in messageId order", async () => {
    const senders = await registerUsers("seq", "seq", "seq");
    const [alice, bob] = senders;
    const id = await createConversation(...senders);
    const results = await Promise.all(Array.from({ length: 36 }, (_, i) => sendMessage(senders[i % 3]!, id)));
    expect(results.map((r) => r.status)).toEqual(Array<number>(36).fill(201));
    const seqs = results.map((r) => r.body.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 36 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.body.messageId)).size).toBe(36);

    const stored = (await history(alice, id, "limit=100")).reverse();
    expect(stored.map((m) => m.seq)).toEqual(seqs);
    const bySeq = new Map(results.map((r) => [r.body.seq, r.body.messageId]));
    expect(stored.map((m) => m.messageId)).toEqual(seqs.map((s) => bySeq.get(s)));
    expect((await getConversation(bob, id)).lastMessageId).toBe(stored.at(-1)!.messageId);
  });
});
