import type { PushPayload } from "../../contract";
import type { PushConfig } from "../config";
import type { StoredSubscription } from "../db/push-subscriptions";
import { encryptPushPayload } from "./encrypt";
import { vapidAuthorization } from "./vapid";

export type PushOutcome =
  | { kind: "sent" }
  /** 404 or 410: the subscription is gone for good. */
  | { kind: "gone" }
  | { kind: "retry"; delaySeconds: number }
  /** Any other refusal (a bad request, our VAPID key refused): retrying would not help. */
  | { kind: "dropped"; status: number };

/** Every plaintext is padded to this size, so a push's length says nothing about its ids. */
export const PADDED_PLAINTEXT_BYTES = 64;
/** A queue message's delay is at most 12 hours. */
const MAX_DELAY_SECONDS = 12 * 60 * 60;
/** How long a push service keeps an undelivered push (RFC 8030 §5.2): a day-old "new message" is stale. */
const TTL_SECONDS = 24 * 60 * 60;

/** Exponential backoff for 5xx and network errors: 10 s, 20 s, 40 s… capped at 10 minutes. */
export const backoffSeconds = (attempt: number) => Math.min(600, 10 * 2 ** Math.max(0, attempt - 1));

/** `Retry-After` as seconds (delta or HTTP date), or null when absent or unreadable. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

/** Sends one push (RFC 8030 §5) whose plaintext is exactly the payload's JSON. */
export async function sendPush(
  subscription: StoredSubscription,
  payload: PushPayload,
  settings: PushConfig,
  attempt: number,
): Promise<PushOutcome> {
  const plaintext = new TextEncoder().encode(
    JSON.stringify({ conversationId: payload.conversationId, messageId: payload.messageId }),
  );
  const body = await encryptPushPayload(plaintext, subscription, { padTo: PADDED_PLAINTEXT_BYTES });
  let response: Response;
  try {
    response = await fetch(subscription.endpoint, {
      method: "POST",
      headers: {
        Authorization: await vapidAuthorization(subscription.endpoint, settings),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        TTL: String(TTL_SECONDS),
        Urgency: "high",
        // One constant topic: a device that is offline gets only the latest push, not a pile of them,
        // and the push service learns nothing from it.
        Topic: "newMessage",
      },
      body,
    });
  } catch {
    return { kind: "retry", delaySeconds: backoffSeconds(attempt) };
  }
  await response.body?.cancel();
  if (response.ok) return { kind: "sent" };
  if (response.status === 404 || response.status === 410) return { kind: "gone" };
  if (response.status === 429 || response.status >= 500) {
    const asked = retryAfterSeconds(response.headers.get("Retry-After"));
    const delay = asked ?? backoffSeconds(attempt);
    return { kind: "retry", delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.max(1, delay)) };
  }
  return { kind: "dropped", status: response.status };
}
