import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  b64,
  call,
  createConversation,
  errorOf,
  history,
  json,
  registerUser,
  registrationBody,
  type TestUser,
} from "../helpers/api";
import { counts } from "../helpers/state";

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
/** Large byte arrays from a size and a seed: generating (and shrinking) 64 K elements one by one is slow. */
const bigBytes = (min: number, max: number) =>
  fc
    .tuple(fc.integer({ min, max }), fc.integer({ min: 0, max: 255 }))
    .map(([n, seed]) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7 + (i >> 8)) & 255));

const validMessage = fc.record({
  nonce: bytes(12, 24),
  signature: bytes(64, 64),
  ciphertext: fc.oneof(bytes(1, 64), bigBytes(60_000, 65_536)),
  authTag: bytes(16, 16),
  associatedData: fc.option(bytes(0, 1024), { nil: undefined }),
  clientMessageId: fc.option(
    fc.string({ minLength: 1, maxLength: 56, unit: "grapheme" }).filter((s) => s.length <= 56),
    { nil: undefined },
  ),
});

/** One field pushed just outside what the contract allows. */
const invalidField = fc.oneof(
  fc.record({ nonce: fc.oneof(bytes(0, 11), bytes(25, 40)).map(b64) }),
  fc.record({ authTag: fc.oneof(bytes(0, 15), bytes(17, 32)).map(b64) }),
  fc.record({ ciphertext: fc.constantFrom("", b64(new Uint8Array(65_537))) }),
  fc.record({ associatedData: bigBytes(1025, 1100).map(b64) }),
  fc.record({ clientMessageId: fc.constantFrom("", "x".repeat(65), "lone \ud800 surrogate") }),
  fc.record({ nonce: fc.constantFrom("AAAAAAAAAAAAAAAA=", "AAAA AAAAAAAAAAA", "-_-_-_-_-_-_-_-_", "AAAAAAAAAAAAAAA") }),
  // v2: a 64-byte Ed25519 signature and a positive integer epoch.
  fc.record({ signature: fc.oneof(bytes(0, 63), bytes(65, 80)).map(b64) }),
  fc.record({ keyEpoch: fc.constantFrom(0, -1, 1.5, "1", null, 2 ** 64) }),
);

describe("messages, generated", () => {
  // Senders take turns so that no one of them reaches the 60-in-10-s message limit.
  let senders: TestUser[];
  let conversationId: number;
  let turn = 0;
  const nextSender = () => senders[turn++ % senders.length]!;
  beforeAll(async () => {
    senders = await Promise.all(Array.from({ length: 8 }, () => registerUser("rt")));
    conversationId = await createConversation(senders[0]!, ...senders.slice(1));
  });

  it("store exactly the bytes sent and give them back byte for byte", async () => {
    await fc.assert(
      fc.asyncProperty(validMessage, async (m) => {
        const body = {
          conversationId,
          keyEpoch: 1,
          nonce: b64(m.nonce),
          ciphertext: b64(m.ciphertext),
          authTag: b64(m.authTag),
          signature: b64(m.signature),
          ...(m.associatedData ? { associatedData: b64(m.associatedData) } : {}),
          ...(m.clientMessageId ? { clientMessageId: `${turn}:${m.clientMessageId}` } : {}),
        };
        const sender = nextSender();
        const res = await call("POST", "/messages", { token: sender.token, body });
        expect(res.status).toBe(201);
        const { messageId } = await json(res);
        const [stored] = await history(sender, conversationId, `before=${messageId + 1}&limit=1`);
        expect(stored).toMatchObject({
          messageId,
          senderId: sender.userId,
          senderDeviceId: sender.deviceId,
          keyEpoch: 1,
          signature: body.signature,
          nonce: body.nonce,
          ciphertext: body.ciphertext,
          authTag: body.authTag,
          associatedData: body.associatedData ?? null,
          clientMessageId: body.clientMessageId ?? null,
        });
      }),
      { numRuns: 40 },
    );
  }, 120_000);

  it("refuse any field out of range with 422 naming it, storing nothing", async () => {
    await fc.assert(
      fc.asyncProperty(validMessage, invalidField, async (m, bad) => {
        const body = {
          conversationId,
          keyEpoch: 1,
          nonce: b64(m.nonce),
          ciphertext: b64(m.ciphertext.slice(0, 64)),
          authTag: b64(m.authTag),
          signature: b64(m.signature),
          ...bad,
        };
        const before = await counts();
        const res = await call("POST", "/messages", { token: nextSender().token, body });
        expect(res.status).toBe(422);
        const error = await errorOf(res);
        expect(error.code).toBe("validation_failed");
        // Only the spoiled field is named: the rest of the body is a valid v2 message.
        expect(new Set(error.details?.map((d) => d.path))).toEqual(new Set([Object.keys(bad)[0]]));
        expect(await counts()).toEqual(before);
      }),
      { numRuns: 60 },
    );
  }, 120_000);
});

describe("usernames, generated", () => {
  it("are accepted exactly when they are 3-32 of [a-zA-Z0-9_.-], unicode and NUL included in the rest", async () => {
    const candidate = fc.oneof(
      fc.stringMatching(/^[a-zA-Z0-9_.-]{3,32}$/),
      // Well-formed unicode only: the test runner's own channel chokes on lone surrogates.
      fc.string({ minLength: 0, maxLength: 40, unit: "grapheme" }),
      fc.string({ minLength: 0, maxLength: 40, unit: "binary-ascii" }),
      fc.constantFrom("ab", "a".repeat(33), "nul\u0000byte", "ali ce", "алиса", "😀😀😀"),
    );
    await fc.assert(
      fc.asyncProperty(candidate, async (raw) => {
        const username = /^[a-zA-Z0-9_.-]{3,32}$/.test(raw)
          ? `${raw.slice(0, 24)}${Math.random().toString(36).slice(2, 8)}`
          : raw;
        const valid = /^[a-zA-Z0-9_.-]{3,32}$/.test(username);
        const before = await counts();
        // Properly made and signed keys: only the username decides.
        const res = await call("POST", "/auth/register", {
          body: (await registrationBody(username, "long enough")).body,
        });
        if (valid) {
          expect(res.status).toBe(201);
          const found = await call("GET", `/users/${encodeURIComponent(username.toUpperCase())}`, {
            token: (await registerUser("rt")).token,
          });
          expect((await json(found)).username).toBe(username);
        } else {
          expect(res.status).toBe(422);
          expect((await errorOf(res)).details?.map((d) => d.path)).toContain("username");
          expect(await counts()).toEqual(before);
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
