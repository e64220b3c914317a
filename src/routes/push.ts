import { createRoute } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { pushConfig } from "../config";
import { findDevice } from "../db/devices";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { requireAuth } from "../middleware/auth";
import { subscribeDevicePush, unsubscribeDevicePush } from "../push/subscriptions";
import { idString } from "../schemas/common";
import { deviceIdParam, pushSubscriptionBody, vapidPublicKeySchema } from "../schemas/push";

const vapidPublicKey = createRoute({
  operationId: "getVapidPublicKey",
  method: "get",
  path: "/push/vapid-public-key",
  tags: ["push"],
  summary: "The server's VAPID public key (unpadded base64url), for PushManager.subscribe()",
  security: bearer,
  middleware: [requireAuth],
  responses: { 200: json(vapidPublicKeySchema, "The key"), ...errors(401) },
});

/**
 * Before the body is validated: the device must be one of the caller's, not revoked (else 404, the
 * same answer for another user's device and an unknown one). Pending devices never get here:
 * `requireAuth` answers 403 (`device not linked yet`), as for every route a pending device may not use.
 */
const ownDevice = createMiddleware<AppEnv>(async (c, next) => {
  const id = idString.safeParse(c.req.param("deviceId"));
  const device = id.success ? await findDevice(c.var.dbs.directory, id.data) : undefined;
  if (!device || device.userId !== c.var.user.userId || device.status === "revoked") {
    throw new AppError("not_found", "no such device");
  }
  await next();
});

const putDevicePush = createRoute({
  operationId: "putDevicePush",
  method: "put",
  path: "/devices/{deviceId}/push",
  tags: ["push"],
  summary: "Set the calling device's Web Push subscription (what PushSubscription.toJSON() gives)",
  description:
    "Only for the device making the call (another of the caller's devices: 403); another user's or an unknown " +
    "device: 404. A pending device cannot subscribe until it is approved (403). A new subscription replaces the old.",
  security: bearer,
  middleware: [requireAuth, ownDevice],
  request: { params: deviceIdParam, body: jsonBody(pushSubscriptionBody) },
  responses: { 204: { description: "Stored" }, ...errors(400, 401, 403, 404, 413, 415, 422) },
});

const deleteDevicePush = createRoute({
  operationId: "deleteDevicePush",
  method: "delete",
  path: "/devices/{deviceId}/push",
  tags: ["push"],
  summary: "Remove a Web Push subscription of one of the caller's devices",
  description: "Any of the caller's devices (e.g. muting a lost phone from a laptop); another user's or unknown: 404.",
  security: bearer,
  middleware: [requireAuth, ownDevice],
  request: { params: deviceIdParam },
  responses: { 204: { description: "Removed (or there was none)" }, ...errors(401, 403, 404) },
});

/** `GET /push/vapid-public-key` and the devices' subscriptions, `PUT`/`DELETE /devices/{deviceId}/push`. */
export const pushRoutes = createRouter()
  .openapi(vapidPublicKey, (c) => c.json({ publicKey: pushConfig(c.env).publicKey }, 200))
  .openapi(putDevicePush, async (c) => {
    const { deviceId } = c.req.valid("param");
    // A subscription is made by the browser it pushes to: only that device can hand it over.
    if (deviceId !== c.var.user.deviceId) throw new AppError("forbidden", "a device sets only its own subscription");
    await subscribeDevicePush(c.var.dbs.directory, pushConfig(c.env), deviceId, c.req.valid("json"));
    return c.body(null, 204);
  })
  .openapi(deleteDevicePush, async (c) => {
    await unsubscribeDevicePush(c.var.dbs.directory, c.req.valid("param").deviceId);
    return c.body(null, 204);
  });
