import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { call, createConversation, registerUser, type TestUser } from "../helpers/api";
import { counts } from "../helpers/state";

// v2's routes, the ones that end the caller's own session or device (logout, revocation) aside:
// those would make every later request a plain 401.
const ROUTES = [
  ["POST", "/auth/register"],
  ["POST", "/auth/login"],
  ["POST", "/auth/refresh"],
  ["POST", "/auth/reset-identity"],
  ["GET", "/auth/sessions"],
  ["GET", "/users/me"],
  ["PUT", "/users/me/settings"],
  ["GET", "/users/:name"],
  ["GET", "/devices"],
  ["POST", "/devices/:id/approve"],
  ["GET", "/devices/:id/provisioning"],
  ["POST", "/ws/tickets"],
  ["POST", "/conversations"],
  ["GET", "/conversations/:id"],
  ["GET", "/conversations/:id/devices"],
  ["GET", "/conversations/:id/keys"],
  ["POST", "/conversations/:id/epochs"],
  ["GET", "/conversations/:id/messages"],
  ["POST", "/conversations/:id/participants"],
  ["DELETE", "/conversations/:id/participants/:name"],
  ["POST", "/messages"],
] as const;

/** Ids as hostile clients write them: huge, negative, fractional, hex, padded, empty, unicode. */
const idText = fc.oneof(
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
  fc.constantFrom("0", "-1", "1.5", "1e3", "0x10", "  1", "9007199254740993", "99999999999999999999", "", "%00", "１"),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);

const b64ish = fc.oneof(fc.base64String(), fc.string(), fc.integer());
const keyUpload = fc.record(
  { deviceId: fc.oneof(fc.integer(), fc.string()), wrappedKey: b64ish, signature: b64ish },
  { requiredKeys: [] },
);

/** JSON bodies: anything, deep nesting, objects shaped almost like the real (v2) ones. */
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.nat({ max: 2000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth)),
  fc.record(
    {
      username: fc.oneof(fc.string(), fc.constant("a\u0000b"), fc.constant("ümlaut"), fc.integer()),
      password: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(null)),
      accountKey: b64ish,
      deviceId: fc.oneof(fc.integer(), fc.double(), fc.string()),
      device: fc.record(
        {
          name: fc.oneof(fc.string({ maxLength: 80 }), fc.integer()),
          identityKey: b64ish,
          signingKey: b64ish,
          signature: b64ish,
        },
        { requiredKeys: [] },
      ),
      refreshToken: fc.oneof(fc.string(), fc.integer()),
      readReceipts: fc.oneof(fc.boolean(), fc.string(), fc.constant(null)),
      conversationId: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(2 ** 64)),
      keyEpoch: fc.oneof(fc.integer(), fc.double(), fc.string()),
      epoch: fc.oneof(fc.integer(), fc.double(), fc.string()),
      nonce: fc.oneof(fc.base64String(), fc.string()),
      ciphertext: fc.oneof(fc.base64String(), fc.string()),
      authTag: fc.oneof(fc.base64String(), fc.string()),
      signature: b64ish,
      participants: fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 3 }),
      keys: fc.array(keyUpload, { maxLength: 3 }),
      provisioning: b64ish,
    },
    { requiredKeys: [] },
  ),
  fc.string({ maxLength: 200 }), // not JSON at all
);

const contentType = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "",
  "application/x-www-form-urlencoded",
  "application/vnd.api+json",
);
const query = fc.array(fc.tuple(fc.constantFrom("limit", "before", "after", "x"), idText), { maxLength: 4 });

describe("hostile requests, generated", () => {
  let user: TestUser;
  let conversationId: number;
  beforeAll(async () => {
    user = await registerUser("prop");
    conversationId = await createConversation(user, await registerUser("prop"));
  });

  it("never answer 500, always use the error shape, and store nothing when they fail", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        idText,
        fc.string({ maxLength: 40 }).map(encodeURIComponent),
        body,
        contentType,
        query,
        fc.boolean(),
        async ([method, template], id, name, payload, type, pairs, ownConversation) => {
          const path = template
            .replace(":id", ownConversation ? String(conversationId) : id)
            .replace(":name", name || "x");
          const search = pairs.map(([k, v]) => `${k}=${v}`).join("&");
          const before = await counts();
          const res = await call(method, `${path}${search ? `?${search}` : ""}`, {
            token: user.token,
            body:
              method === "GET" || method === "DELETE"
                ? undefined
                : typeof payload === "string"
                  ? payload
                  : JSON.stringify(payload),
            headers: { "Content-Type": type },
          });
          expect(res.status).not.toBe(500);
          if (res.status >= 400) {
            const error = ((await res.json()) as any).error;
            expect(typeof error.code).toBe("string");
            expect(typeof error.message).toBe("string");
            expect(await counts()).toEqual(before);
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);
});
