import { createRoute, z } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { findDevice, listOwnDevices } from "../db/devices";
import { approveDevice, revokeDevice } from "../db/lifecycle";
import { membershipsAcross, peersAcross } from "../db/user-conversations";
import { findUserById } from "../db/users";
import type { AppEnv } from "../env";
import { encodeBase64 } from "../lib/base64";
import { verifyDeviceSignature } from "../lib/crypto";
import { AppError } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { closeSocketsOf, requirePassword } from "../lib/sessions";
import { requireAuth, requireSession } from "../middleware/auth";
import { presentDevice, presentOwnDevice } from "../presenters";
import { publishToInboxes } from "../realtime/publish";
import { passwordProofBody } from "../schemas/auth";
import { deviceIdParam, idString } from "../schemas/common";
import { approveBody, deviceSchema, ownDeviceSchema, provisioningSchema } from "../schemas/users";

const tags = ["devices"];
const noSuchDevice = () => new AppError("not_found", "no such device");

/** Before the body is even validated: another user's or an unknown device is 404, one that is not pending 409. */
const pendingTarget = createMiddleware<AppEnv>(async (c, next) => {
  const id = idString.safeParse(c.req.param("deviceId"));
  const device = id.success ? await findDevice(c.var.dbs.directory, id.data) : undefined;
  if (!device || device.userId !== c.var.user.userId) throw noSuchDevice();
  if (device.status !== "pending") throw new AppError("conflict", "this device is not pending approval");
  await next();
});

const list = createRoute({
  operationId: "listDevices",
  method: "get",
  path: "/",
  tags,
  summary: "The caller's own devices, pending and active",
  security: bearer,
  middleware: [requireSession],
  responses: { 200: json(z.array(ownDeviceSchema), "The caller's devices, oldest first"), ...errors(401) },
});

const approve = createRoute({
  operationId: "approveDevice",
  method: "post",
  path: "/{deviceId}/approve",
  tags,
  summary: "Approve a pending device: its signature, provisioning envelope and the current key of every conversation",
  security: bearer,
  middleware: [requireAuth, pendingTarget],
  request: { params: deviceIdParam, body: jsonBody(approveBody) },
  responses: { 200: json(deviceSchema, "The device, now active"), ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
});

const provisioning = createRoute({
  operationId: "getProvisioning",
  method: "get",
  path: "/{deviceId}/provisioning",
  tags,
  summary: "The provisioning envelope, for the approved device itself",
  security: bearer,
  middleware: [requireAuth],
  request: { params: deviceIdParam },
  responses: { 200: json(provisioningSchema, "The envelope"), ...errors(401, 403, 404) },
});

const revoke = createRoute({
  operationId: "revokeDevice",
  method: "delete",
  path: "/{deviceId}",
  tags,
  summary: "Revoke a device (the password unless it is the caller's own current device)",
  security: bearer,
  middleware: [requireAuth],
  request: {
    params: deviceIdParam,
    body: { required: false, content: { "application/json": { schema: passwordProofBody } } },
  },
  responses: {
    204: { description: "Revoked: its sessions end, its sockets close (4001)" },
    ...errors(401, 403, 404, 422),
  },
});

const listIds = (ids: number[]) => ids.sort((a, b) => a - b).join(", ");

export const deviceRoutes = createRouter()
  .openapi(list, async (c) => {
    const devices = await listOwnDevices(c.var.dbs.directory, c.var.user.userId);
    return c.json(
      devices.map((d) => presentOwnDevice(d, c.var.user.deviceId)),
      200,
    );
  })
  .openapi(approve, async (c) => {
    const me = c.var.user;
    const { deviceId } = c.req.valid("param");
    const body = c.req.valid("json");
    // Everything the answer and the events need is read before the write: a read failing after it would answer 500 for a committed approval.
    const [device, user, memberships, peers] = await Promise.all([
      findDevice(c.var.dbs.directory, deviceId),
      findUserById(c.var.dbs.directory, me.userId),
      membershipsAcross(c.var.dbs, me.userId),
      peersAcross(c.var.dbs, me.userId),
    ]);
    if (!device || !user) throw noSuchDevice();
    if (!(await verifyDeviceSignature(user.accountKey, { ...device, signature: body.signature }))) {
      throw new AppError("validation_failed", "the signature does not verify with the account key", {
        details: [{ path: "signature", message: "does not verify with the account key" }],
      });
    }
    const current = new Map(memberships.map((m) => [m.conversationId, m.epoch]));
    const stale = body.keys.flatMap((k, i) => {
      const epoch = current.get(k.conversationId);
      return epoch !== undefined && epoch !== k.epoch
        ? [{ path: `keys.${i}.epoch`, message: `current is ${epoch}` }]
        : [];
    });
    if (stale.length > 0) throw new AppError("conflict", "a key is not for the current epoch", { details: stale });
    const given = body.keys.map((k) => k.conversationId);
    const missing = [...current.keys()].filter((id) => !given.includes(id));
    const unexpected = given.filter((id, i) => !current.has(id) || given.indexOf(id) !== i);
    if (missing.length > 0 || unexpected.length > 0) {
      throw new AppError("validation_failed", "keys must cover every conversation of the user exactly once", {
        details: [
          ...(missing.length ? [{ path: "keys", message: `missing conversation ids: ${listIds(missing)}` }] : []),
          ...(unexpected.length
            ? [{ path: "keys", message: `unexpected conversation ids: ${listIds(unexpected)}` }]
            : []),
        ],
      });
    }
    const approved = await approveDevice(
      c.var.dbs,
      {
        userId: me.userId,
        deviceId,
        signature: body.signature,
        provisioning: body.provisioning,
        keys: body.keys,
        by: me,
      },
      device,
    );
    if (!approved) throw new AppError("conflict", "this device is not pending approval");
    publishToInboxes(c, { type: "deviceApproved", data: { deviceId } }, [me.userId], [deviceId]);
    const frame = { type: "deviceAdded" as const, data: { userId: me.userId, username: user.username, deviceId } };
    publishToInboxes(c, frame, [me.userId, ...peers]);
    return c.json(presentDevice({ ...device, status: "active", signature: body.signature }), 200);
  })
  .openapi(provisioning, async (c) => {
    const { deviceId } = c.req.valid("param");
    const device = deviceId === c.var.user.deviceId ? await findDevice(c.var.dbs.directory, deviceId) : undefined;
    if (!device?.provisioning) throw new AppError("not_found", "no provisioning envelope for this device");
    return c.json({ provisioning: encodeBase64(device.provisioning) }, 200);
  })
  .openapi(revoke, async (c) => {
    const me = c.var.user;
    const { deviceId } = c.req.valid("param");
    const device = await findDevice(c.var.dbs.directory, deviceId);
    if (!device || device.userId !== me.userId || device.status === "revoked") throw noSuchDevice();
    const user = await findUserById(c.var.dbs.directory, me.userId);
    if (deviceId !== me.deviceId) await requirePassword(user, c.req.valid("json")?.password);
    if (!user) throw new AppError("unauthorized", "the token's user does not exist");
    // Read before the write: a read failing after it would answer 500 for a committed revocation.
    const [memberships, peers] = await Promise.all([
      membershipsAcross(c.var.dbs, me.userId),
      peersAcross(c.var.dbs, me.userId),
    ]);
    if (!(await revokeDevice(c.var.dbs, me.userId, deviceId))) throw noSuchDevice();
    await closeSocketsOf(
      c,
      me.userId,
      { deviceIds: [deviceId] },
      memberships.map((m) => m.conversationId),
    );
    const frame = { type: "deviceRemoved" as const, data: { userId: me.userId, username: user.username, deviceId } };
    publishToInboxes(c, frame, [me.userId, ...peers]);
    return c.body(null, 204);
  });
