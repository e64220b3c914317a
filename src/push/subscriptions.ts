import type { PushConfig } from "../config";
import { deletePushSubscription, upsertPushSubscription } from "../db/push-subscriptions";
import type { Database } from "../env";
import { AppError } from "../lib/errors";
import type { PushSubscriptionBody } from "../schemas/push";

const LOOPBACK = /^(localhost|.*\.localhost|127\.\d+\.\d+\.\d+|\[::1\]|0\.0\.0\.0)$/i;

/** Why an endpoint is refused, or null: `https://` only, unless the deployment allows http and loopback. */
export function endpointProblem(endpoint: string, allowInsecure: boolean): string | null {
  const url = new URL(endpoint);
  if (url.protocol !== "https:" && !(allowInsecure && url.protocol === "http:")) return "must be an https:// URL";
  if (!allowInsecure && LOOPBACK.test(url.hostname)) return "must not be a loopback address";
  if (url.username || url.password) return "must not carry credentials";
  return null;
}

/**
 * `PUT /devices/{deviceId}/push` once the caller is known to own `deviceId` (the device routes check
 * that): stores or replaces the device's subscription. 422 for an endpoint the deployment refuses.
 */
export async function subscribeDevicePush(
  db: Database,
  settings: PushConfig,
  deviceId: number,
  body: PushSubscriptionBody,
): Promise<void> {
  const problem = endpointProblem(body.endpoint, settings.allowInsecureEndpoints);
  if (problem) {
    throw new AppError("validation_failed", "request is not valid", {
      details: [{ path: "endpoint", message: problem }],
    });
  }
  await upsertPushSubscription(db, { deviceId, endpoint: body.endpoint, ...body.keys });
}

/** `DELETE /devices/{deviceId}/push` (also when the device is revoked): 204 whether or not there was one. */
export async function unsubscribeDevicePush(db: Database, deviceId: number): Promise<void> {
  await deletePushSubscription(db, deviceId);
}
