import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createDb } from "../../src/db/client";
import { upsertPushSubscription } from "../../src/db/push-subscriptions";
import { enqueuePushes, handlePushBatch, type PushJob } from "../../src/push/queue";
import { FakePushService } from "./fake-push-service";

let service: FakePushService;
let lastDevice = 1_000;
const db = () => createDb(env.DIRECTORY);

beforeEach(() => {
  service = new FakePushService();
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function subscribedDevice() {
  lastDevice += 1;
  const deviceId = lastDevice;
  const { endpoint, keys } = await service.subscriber();
  await upsertPushSubscription(db(), { deviceId, endpoint, ...keys });
  return { deviceId, endpoint };
}

let lastMessage = 0;
function batchOf(jobs: PushJob[], attempts = 1) {
  return createMessageBatch<PushJob>(
    "parley-push",
    jobs.map((body) => {
      lastMessage += 1;
      return { id: `m${lastMessage}`, timestamp: new Date(), attempts, body };
    }),
  );
}

const subscriptionRow = (deviceId: number) =>
  env.DIRECTORY.prepare("select * from push_subscriptions where device_id = ?").bind(deviceId).first();

describe("handlePushBatch", () => {
  it("sends each device one push whose plaintext is exactly the ids, VAPID-signed and aes128gcm", async () => {
    const a = await subscribedDevice();
    const b = await subscribedDevice();
    const batch = batchOf([
      { deviceId: a.deviceId, conversationId: 7, messageId: 43 },
      { deviceId: b.deviceId, conversationId: 7, messageId: 43 },
    ]);
    await handlePushBatch(batch, env);
    expect(service.rejected).toEqual([]);
    for (const device of [a, b]) {
      const pushes = service.to(device.endpoint);
      expect(pushes.map((p) => p.plaintext)).toEqual(['{"conversationId":7,"messageId":43}']);
      expect(pushes[0]!.claims.aud).toBe("http://push.test");
    }
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(batch.messages.map((m) => m.id).sort());
  });

  it("coalesces: at most one push per device per 10 seconds, within a batch and across batches", async () => {
    const device = await subscribedDevice();
    const job = (messageId: number) => ({ deviceId: device.deviceId, conversationId: 1, messageId });
    await handlePushBatch(batchOf([job(1), job(2)]), env);
    await handlePushBatch(batchOf([job(3)]), env);
    expect(service.to(device.endpoint)).toHaveLength(1);

    // Ten seconds later the device can be woken again.
    const earlier = new Date(Date.now() - 10_001).toISOString();
    await env.DIRECTORY.prepare("update push_subscriptions set last_push_at = ? where device_id = ?")
      .bind(earlier, device.deviceId)
      .run();
    await handlePushBatch(batchOf([job(4)]), env);
    expect(service.to(device.endpoint).map((p) => JSON.parse(p.plaintext).messageId)).toEqual([1, 4]);
  });

  it.each([404, 410])("deletes a subscription that answers %i, and acks", async (status) => {
    const device = await subscribedDevice();
    service.answer(device.endpoint, new Response(null, { status }));
    const batch = batchOf([{ deviceId: device.deviceId, conversationId: 1, messageId: 1 }]);
    await handlePushBatch(batch, env);
    expect(await subscriptionRow(device.deviceId)).toBeNull();
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toHaveLength(1);
  });

  it("retries a 503 with backoff and a 429 after its Retry-After; the retry is sent despite the slot", async () => {
    const busy = await subscribedDevice();
    const limited = await subscribedDevice();
    service.answer(busy.endpoint, new Response(null, { status: 503 }));
    service.answer(limited.endpoint, new Response(null, { status: 429, headers: { "Retry-After": "30" } }));
    const batch = batchOf([
      { deviceId: busy.deviceId, conversationId: 2, messageId: 5 },
      { deviceId: limited.deviceId, conversationId: 2, messageId: 5 },
    ]);
    const retries = batch.messages.map((m) => vi.spyOn(m, "retry"));
    await handlePushBatch(batch, env);
    expect(retries[0]).toHaveBeenCalledWith({ delaySeconds: 10 });
    expect(retries[1]).toHaveBeenCalledWith({ delaySeconds: 30 });
    expect(service.received).toHaveLength(0);

    // The queue redelivers them (attempts 2) within the 10-second window: they go out now.
    const again = batchOf(
      batch.messages.map((m) => m.body),
      2,
    );
    const againRetries = again.messages.map((m) => vi.spyOn(m, "retry"));
    await handlePushBatch(again, env);
    expect(service.to(busy.endpoint)).toHaveLength(1);
    expect(service.to(limited.endpoint)).toHaveLength(1);
    for (const spy of againRetries) expect(spy).not.toHaveBeenCalled();
    expect(await subscriptionRow(busy.deviceId)).not.toBeNull();
  });

  it("acks without sending for a device without a subscription, and for a malformed message", async () => {
    const batch = createMessageBatch("parley-push", [
      { id: "x1", timestamp: new Date(), attempts: 1, body: { deviceId: 999_999, conversationId: 1, messageId: 1 } },
      { id: "x2", timestamp: new Date(), attempts: 1, body: { hello: "world" } },
    ]);
    vi.spyOn(console, "error").mockImplementation(() => {});
    await handlePushBatch(batch, env);
    expect(fetch).not.toHaveBeenCalled();
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks.sort()).toEqual(["x1", "x2"]);
  });
});

describe("enqueuePushes", () => {
  it("queues one job per subscribed device and never throws", async () => {
    const a = await subscribedDevice();
    const sent: unknown[] = [];
    const queue = {
      sendBatch: async (messages: Iterable<{ body: unknown }>) => void sent.push(...[...messages].map((m) => m.body)),
    };
    const count = await enqueuePushes(
      { ...env, PUSH_QUEUE: queue as unknown as Queue },
      {
        conversationId: 3,
        messageId: 9,
        deviceIds: [a.deviceId, 424_242],
      },
    );
    expect(count).toBe(1);
    expect(sent).toEqual([{ deviceId: a.deviceId, conversationId: 3, messageId: 9 }]);

    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const broken = { sendBatch: async () => Promise.reject(new Error("queue down")) } as unknown as Queue;
    await expect(
      enqueuePushes({ ...env, PUSH_QUEUE: broken }, { conversationId: 3, messageId: 9, deviceIds: [a.deviceId] }),
    ).resolves.toBe(0);
    expect(errors).toHaveBeenCalledOnce();
  });

  it("reaches the real queue binding", async () => {
    const a = await subscribedDevice();
    expect(await enqueuePushes(env, { conversationId: 3, messageId: 10, deviceIds: [a.deviceId] })).toBe(1);
    // The real consumer runs after the batch timeout (1 s) and then finds nothing to send.
    await env.DIRECTORY.prepare("delete from push_subscriptions where device_id = ?").bind(a.deviceId).run();
  });
});
