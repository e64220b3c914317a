import { createRoute } from "@hono/zod-openapi";
import { pushConfig } from "../config";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { requireAuth } from "../middleware/auth";
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

/** `GET /push/vapid-public-key`. */
export const pushRoutes = createRouter().openapi(vapidPublicKey, (c) =>
  c.json({ publicKey: pushConfig(c.env).publicKey }, 200),
);

// Declared, not mounted: "own device" needs the devices and the `did` claim of contract v2. The device
// routes mount them with `subscribeDevicePush` / `unsubscribeDevicePush` (src/push/subscriptions.ts).
export const putDevicePushRoute = createRoute({
  operationId: "putDevicePush",
  method: "put",
  path: "/devices/{deviceId}/push",
  tags: ["push"],
  summary: "Set this device's Web Push subscription (what PushSubscription.toJSON() gives)",
  security: bearer,
  middleware: [requireAuth],
  request: { params: deviceIdParam, body: jsonBody(pushSubscriptionBody) },
  responses: { 204: { description: "Stored" }, ...errors(400, 401, 403, 404, 413, 415, 422) },
});

export const deleteDevicePushRoute = createRoute({
  operationId: "deleteDevicePush",
  method: "delete",
  path: "/devices/{deviceId}/push",
  tags: ["push"],
  summary: "Remove this device's Web Push subscription",
  security: bearer,
  middleware: [requireAuth],
  request: { params: deviceIdParam },
  responses: { 204: { description: "Removed (or there was none)" }, ...errors(401, 403, 404) },
});
