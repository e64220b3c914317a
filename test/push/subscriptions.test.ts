import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { pushConfig } from "../../src/config";
import { createDb } from "../../src/db/client";
import { listPushSubscriptions } from "../../src/db/push-subscriptions";
import { AppError } from "../../src/lib/errors";
import { endpointProblem, subscribeDevicePush, unsubscribeDevicePush } from "../../src/push/subscriptions";
import { pushSubscriptionBody } from "../../src/schemas/push";
import { call, errorOf, json, registerUser } from "../helpers/api";
import { toBase64Url } from "./rfc8291";

const p256dh = new Uint8Array(65).fill(9);
p256dh[0] = 4;
const auth = new Uint8Array(16).fill(3);
const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

describe("push subscriptions", () => {
  it("accepts keys as base64url or standard base64 and rejects wrong lengths", () => {
    const url = { endpoint: "https://push.example/x", keys: { p256dh: toBase64Url(p256dh), auth: toBase64Url(auth) } };
    const std = { endpoint: "https://push.example/x", keys: { p256dh: b64(p256dh), auth: b64(auth) } };
    for (const body of [url, std]) {
      const parsed = pushSubscriptionBody.parse(body);
      expect(parsed.keys).toEqual({ p256dh, auth });
    }
    expect(pushSubscriptionBody.safeParse({ ...url, keys: { ...url.keys, auth: b64(p256dh) } }).success).toBe(false);
    const compressed = p256dh.slice();
    compressed[0] = 2;
    expect(pushSubscriptionBody.safeParse({ ...url, keys: { ...url.keys, p256dh: b64(compressed) } }).success).toBe(
      false,
    );
    expect(pushSubscriptionBody.safeParse({ ...url, endpoint: "not a url" }).success).toBe(false);
  });

  it("allows only https:// endpoints off loopback unless the deployment allows insecure ones", () => {
    expect(endpointProblem("https://fcm.googleapis.com/fcm/send/abc", false)).toBeNull();
    expect(endpointProblem("http://push.example/x", false)).toMatch(/https/);
    expect(endpointProblem("https://localhost/x", false)).toMatch(/loopback/);
    expect(endpointProblem("https://127.0.0.1:8443/x", false)).toMatch(/loopback/);
    expect(endpointProblem("https://[::1]/x", false)).toMatch(/loopback/);
    expect(endpointProblem("http://127.0.0.1:9000/x", true)).toBeNull();
    expect(endpointProblem("ftp://push.example/x", true)).toMatch(/https/);
  });

  it("stores, replaces and deletes a device's subscription; 422 for a refused endpoint", async () => {
    const db = createDb(env.DIRECTORY);
    const strict = { ...pushConfig(env), allowInsecureEndpoints: false };
    const body = (endpoint: string) => ({ endpoint, keys: { p256dh, auth }, expirationTime: null });
    await subscribeDevicePush(db, strict, 77, body("https://push.example/one"));
    await subscribeDevicePush(db, strict, 77, body("https://push.example/two"));
    expect((await listPushSubscriptions(db, [77, 78])).map((s) => s.endpoint)).toEqual(["https://push.example/two"]);
    const refused = await subscribeDevicePush(db, strict, 78, body("http://push.example/x")).catch((e) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).status).toBe(422);
    await unsubscribeDevicePush(db, 77);
    await unsubscribeDevicePush(db, 77);
    expect(await listPushSubscriptions(db, [77])).toEqual([]);
  });
});

describe("GET /push/vapid-public-key", () => {
  it("returns the configured key, unpadded base64url, to an authenticated caller", async () => {
    const user = await registerUser("push");
    const res = await call("GET", "/push/vapid-public-key", { token: user.token });
    expect(res.status).toBe(200);
    const { publicKey } = await json(res);
    expect(publicKey).toBe(env.VAPID_PUBLIC_KEY);
    expect(publicKey).toMatch(/^B[A-Za-z0-9_-]{86}$/);
    const anonymous = await call("GET", "/push/vapid-public-key");
    expect(anonymous.status).toBe(401);
    expect((await errorOf(anonymous)).code).toBe("unauthorized");
  });
});
