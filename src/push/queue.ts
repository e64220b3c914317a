import { pushConfig } from "../config";
import { deletePushSubscription, listPushSubscriptions, takePushSlot } from "../db/push-subscriptions";
import { databases } from "../db/shards";
import { sendPush } from "./send";

/** One queue message: a push for one device about one message. */
export interface PushJob {
  deviceId: number;
  conversationId: number;
  messageId: number;
}

/** Pushes to one device are coalesced: at most one per this window. */
export const PUSH_WINDOW_MS = 10_000;
/** `sendBatch` takes at most 100 messages. */
const QUEUE_BATCH = 100;

const isJob = (body: unknown): body is PushJob =>
  typeof body === "object" &&
  body !== null &&
  ["deviceId", "conversationId", "messageId"].every((k) => Number.isSafeInteger((body as Record<string, unknown>)[k]));

/**
 * Queues one push per device of `deviceIds` that has a subscription. Call it after the message is
 * committed, inside `waitUntil`: it never throws, so it can neither delay nor fail the request.
 * `deviceIds` are the recipients' devices without an open socket, the sending device excluded.
 */
export async function enqueuePushes(
  env: Env,
  push: { conversationId: number; messageId: number; deviceIds: number[] },
): Promise<number> {
  try {
    if (push.deviceIds.length === 0) return 0;
    const subscribed = await listPushSubscriptions(databases(env).directory, push.deviceIds);
    const jobs = subscribed.map(({ deviceId }) => ({
      body: { deviceId, conversationId: push.conversationId, messageId: push.messageId } satisfies PushJob,
      contentType: "json" as const,
    }));
    for (let i = 0; i < jobs.length; i += QUEUE_BATCH) await env.PUSH_QUEUE.sendBatch(jobs.slice(i, i + QUEUE_BATCH));
    return jobs.length;
  } catch (err) {
    console.error(`push: could not queue pushes: ${err instanceof Error ? err.name : "error"}`);
    return 0;
  }
}

/**
 * The queue consumer. Each message is acked or retried on its own: a push service that fails one
 * device does not resend the others. A first attempt must take the device's slot (coalescing); a
 * retry already holds it, so it sends regardless and stamps the slot again.
 */
export async function handlePushBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const settings = pushConfig(env);
  const db = databases(env).directory;
  await Promise.all(
    batch.messages.map(async (message) => {
      if (!isJob(message.body)) {
        console.error("push: dropped a malformed queue message");
        message.ack();
        return;
      }
      const job = message.body;
      const firstAttempt = message.attempts <= 1;
      const subscription = await takePushSlot(db, job.deviceId, new Date(), firstAttempt ? PUSH_WINDOW_MS : undefined);
      if (!subscription) {
        message.ack(); // unsubscribed meanwhile, or pushed to less than 10 s ago
        return;
      }
      const outcome = await sendPush(subscription, job, settings, message.attempts);
      switch (outcome.kind) {
        case "retry":
          message.retry({ delaySeconds: outcome.delaySeconds });
          return;
        case "gone":
          await deletePushSubscription(db, job.deviceId, subscription.endpoint);
          break;
        case "dropped":
          console.error(`push: the push service refused a push with ${outcome.status}`);
          break;
      }
      message.ack();
    }),
  );
}
