import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  approve,
  call,
  createConversation,
  errorOf,
  loginPendingDevice,
  registerUser,
  registerUsers,
  sendMessage,
  sleep,
  type TestUser,
} from "../helpers/api";
import { conversationSocket, inboxSocket, type TestSocket } from "../helpers/sockets";
import { FakePushService } from "./fake-push-service";
import { toBase64Url } from "./rfc8291";

let service: FakePushService;
const sockets: TestSocket[] = [];

beforeEach(() => {
  service = new FakePushService();
});
afterEach(() => {
  for (const s of sockets.splice(0)) s.ws.close(1000, "done");
  vi.restoreAllMocks();
});

/** A browser subscription of the fake push service, as PushSubscription.toJSON() gives it. */
async function subscriptionBody() {
  const { endpoint, keys } = await service.subscriber();
  return { endpoint, keys: { p256dh: toBase64Url(keys.p256dh), auth: toBase64Url(keys.auth) }, expirationTime: null };
}

function putPush(user: TestUser, deviceId: number, body: unknown) {
  return call("PUT", `/devices/${deviceId}/push`, { token: user.token, body });
}

/** Subscribes the user's current device; returns its endpoint. */
async function subscribe(user: TestUser): Promise<string> {
  const body = await subscriptionBody();
  const res = await putPush(user, user.deviceId, body);
  if (res.status !== 204) throw new Error(`subscribe failed: ${res.status} ${await res.text()}`);
  return body.endpoint;
}

const subscriptionOf = (deviceId: number) =>
  env.DIRECTORY.prepare("select endpoint from push_subscriptions where device_id = ?")
    .bind(deviceId)
    .first<string>("endpoint");

/** Waits until `predicate` holds (the queue consumer runs after its 1 s batch timeout). */
async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end)
      throw new Error(`timed out; pushes: ${JSON.stringify(service.received.map((p) => p.endpoint))}`);
    await sleep(100);
  }
}

describe("PUT/DELETE /devices/{deviceId}/push", () => {
  it("stores and replaces the caller's own subscription (204) and deletes it (204, twice)", async () => {
    const alice = await registerUser("pr");
    const first = await subscribe(alice);
    expect(await subscriptionOf(alice.deviceId)).toBe(first);
    const second = await subscribe(alice);
    expect(await subscriptionOf(alice.deviceId)).toBe(second);
    for (let i = 0; i < 2; i++) {
      const res = await call("DELETE", `/devices/${alice.deviceId}/push`, { token: alice.token });
      expect(res.status).toBe(204);
    }
    expect(await subscriptionOf(alice.deviceId)).toBeNull();
  });

  it("answers 404 for another user's or an unknown device (before the body), 403 for a pending caller", async () => {
    const [alice, bob] = await registerUsers("pr", "pr");
    const bobs = await subscribe(bob);
    for (const deviceId of [bob.deviceId, 999_999_999]) {
      const put = await putPush(alice, deviceId, await subscriptionBody());
      expect(put.status).toBe(404);
      expect((await errorOf(put)).code).toBe("not_found");
      expect((await putPush(alice, deviceId, { endpoint: 1 })).status).toBe(404);
      expect((await call("DELETE", `/devices/${deviceId}/push`, { token: alice.token })).status).toBe(404);
    }
    expect(await subscriptionOf(bob.deviceId)).toBe(bobs);

    const pending = await loginPendingDevice(alice);
    const refused = await putPush(pending, pending.deviceId, await subscriptionBody());
    expect(refused.status).toBe(403);
    expect(await subscriptionOf(pending.deviceId)).toBeNull();
    expect((await call("PUT", `/devices/${alice.deviceId}/push`, { body: await subscriptionBody() })).status).toBe(401);
  });

  it("lets a device set only its own subscription (403 for another of the user's) but remove any of them", async () => {
    const alice = await registerUser("pr");
    const pending = await loginPendingDevice(alice, "phone");
    expect((await approve(alice, pending)).status).toBe(200);
    const phone = await subscribe(pending);
    expect((await putPush(alice, pending.deviceId, await subscriptionBody())).status).toBe(403);
    expect(await subscriptionOf(pending.deviceId)).toBe(phone);
    expect((await call("DELETE", `/devices/${pending.deviceId}/push`, { token: alice.token })).status).toBe(204);
    expect(await subscriptionOf(pending.deviceId)).toBeNull();
  });

  it("answers 422 for a malformed subscription", async () => {
    const alice = await registerUser("pr");
    const body = await subscriptionBody();
    const short = await putPush(alice, alice.deviceId, { ...body, keys: { ...body.keys, auth: "AAAA" } });
    expect(short.status).toBe(422);
    expect((await putPush(alice, alice.deviceId, { ...body, endpoint: "not a url" })).status).toBe(422);
    expect(await subscriptionOf(alice.deviceId)).toBeNull();
  });

  it("drops the subscription when the device is revoked or the account deleted", async () => {
    const alice = await registerUser("pr");
    const pending = await loginPendingDevice(alice, "phone");
    expect((await approve(alice, pending)).status).toBe(200);
    await subscribe(pending);
    await subscribe(alice);
    const revoked = await call("DELETE", `/devices/${pending.deviceId}`, {
      token: alice.token,
      body: { password: alice.password },
    });
    expect(revoked.status).toBe(204);
    expect(await subscriptionOf(pending.deviceId)).toBeNull();
    expect(await subscriptionOf(alice.deviceId)).not.toBeNull();
    const deleted = await call("DELETE", "/users/me", { token: alice.token, body: { password: alice.password } });
    expect(deleted.status).toBe(204);
    expect(await subscriptionOf(alice.deviceId)).toBeNull();
  });
});

describe("pushes after POST /messages", () => {
  it("pushes {conversationId, messageId} to subscribed devices with no socket, not to connected ones or the sender's", async () => {
    const [alice, bob, carol, dave, erin] = await registerUsers("pm", "pm", "pm", "pm", "pm");
    const laptop = await loginPendingDevice(alice, "laptop");
    expect((await approve(alice, laptop)).status).toBe(200);
    const conversationId = await createConversation(alice, bob, carol, dave, erin);
    const endpoints = {
      sender: await subscribe(alice),
      senderLaptop: await subscribe(laptop), // the sender's other device, offline
      bob: await subscribe(bob), // offline
      carol: await subscribe(carol), // an inbox socket open
      dave: await subscribe(dave), // a socket on this conversation
    };
    sockets.push(await inboxSocket(carol.token), await conversationSocket(conversationId, dave.token));

    const sent = await sendMessage(alice, conversationId);
    expect(sent.status).toBe(201);
    await until(() => service.to(endpoints.bob).length > 0 && service.to(endpoints.senderLaptop).length > 0);
    await sleep(500);
    const expected = { conversationId, messageId: sent.body.messageId };
    for (const endpoint of [endpoints.bob, endpoints.senderLaptop]) {
      const pushes = service.to(endpoint);
      expect(pushes).toHaveLength(1);
      expect(JSON.parse(pushes[0]!.plaintext)).toEqual(expected);
      expect(pushes[0]!.plaintext).toBe(JSON.stringify(expected));
    }
    for (const endpoint of [endpoints.sender, endpoints.carol, endpoints.dave])
      expect(service.to(endpoint)).toEqual([]);
    expect(service.rejected).toEqual([]);
  });

  it("pushes once the socket is gone, and deletes a subscription the push service answers 410", async () => {
    const [alice, bob] = await registerUsers("pm", "pm");
    const conversationId = await createConversation(alice, bob);
    const endpoint = await subscribe(bob);
    const socket = await inboxSocket(bob.token);
    expect((await sendMessage(alice, conversationId)).status).toBe(201);
    await socket.waitFor(() => socket.newMessages().length === 1);
    // Past the consumer's batch timeout: a push would have arrived by now.
    await sleep(1500);
    expect(service.to(endpoint)).toEqual([]);
    socket.ws.close(1000, "bye");
    await socket.closed;

    service.answer(endpoint, new Response(null, { status: 410 }));
    expect((await sendMessage(alice, conversationId)).status).toBe(201);
    await until(async () => (await subscriptionOf(bob.deviceId)) === null);
    expect(service.to(endpoint)).toEqual([]);
  });
});
