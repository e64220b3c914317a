import { createRoute } from "@hono/zod-openapi";
import { findDevice, listOwnDevices } from "../db/devices";
import { resetIdentity } from "../db/lifecycle";
import { openSession, openSessionOnNewDevice, rotateRefreshToken } from "../db/sessions";
import { membershipsAcross, peersAcross } from "../db/user-conversations";
import { findUserByUsername, insertUser, passwordOf, type UserRow, updatePasswordHash } from "../db/users";
import { sha256, verifyDeviceSignature } from "../lib/crypto";
import { AppError } from "../lib/errors";
import { createRouter, errors, json, jsonBody } from "../lib/openapi";
import { hashPassword, needsRehash, verifyPassword } from "../lib/passwords";
import { closeSocketsOf, endSessionsNow, newRefreshToken, sessionBody } from "../lib/sessions";
import { authRateLimit, loginUsernameRateLimit } from "../middleware/rate-limit";
import { publishToInboxes } from "../realtime/publish";
import {
  loginBody,
  refreshBody,
  registerBody,
  registeredSchema,
  resetIdentityBody,
  sessionSchema,
} from "../schemas/auth";

const tags = ["accounts"];

const badDeviceSignature = () =>
  new AppError("validation_failed", "the device signature does not verify with the account key", {
    details: [{ path: "device.signature", message: "does not verify with the account key" }],
  });

const register = createRoute({
  operationId: "register",
  method: "post",
  path: "/register",
  tags,
  summary: "Create an account with its account key and first (active) device",
  security: [],
  middleware: [authRateLimit],
  request: { body: jsonBody(registerBody) },
  responses: { 201: json(registeredSchema, "Registered"), ...errors(400, 409, 413, 415, 422, 429) },
});

const login = createRoute({
  operationId: "login",
  method: "post",
  path: "/login",
  tags,
  summary: "Open a session on a known device (`deviceId`) or as a new, pending device (`device`)",
  security: [],
  middleware: [authRateLimit, loginUsernameRateLimit],
  request: { body: jsonBody(loginBody) },
  responses: { 200: json(sessionSchema, "Logged in"), ...errors(400, 401, 413, 415, 422, 429) },
});

const refresh = createRoute({
  operationId: "refreshSession",
  method: "post",
  path: "/refresh",
  tags,
  summary: "Spend a refresh token for a new access token and a new refresh token (a reused one ends the session)",
  security: [],
  request: { body: jsonBody(refreshBody) },
  responses: { 200: json(sessionSchema, "Refreshed"), ...errors(400, 401, 413, 415, 422) },
});

const reset = createRoute({
  operationId: "resetIdentity",
  method: "post",
  path: "/reset-identity",
  tags,
  summary: "Lost every device: a new account key and device; every old device is revoked",
  security: [],
  middleware: [authRateLimit],
  request: { body: jsonBody(resetIdentityBody) },
  responses: { 200: json(sessionSchema, "A session on the new device"), ...errors(400, 401, 413, 415, 422, 429) },
});

/** The user if the password is right; an unknown username costs the same time as a wrong password. */
async function checkCredentials(
  db: Parameters<typeof findUserByUsername>[0],
  username: string,
  password: string,
): Promise<UserRow> {
  const user = await findUserByUsername(db, username);
  const stored = user && passwordOf(user);
  const valid = await verifyPassword(password, stored);
  if (!user || !stored || !valid) throw new AppError("unauthorized", "wrong username or password");
  if (needsRehash(stored)) await updatePasswordHash(db, user.id, await hashPassword(password));
  return user;
}

export const authRoutes = createRouter()
  .openapi(register, async (c) => {
    const { username, password, accountKey, device } = c.req.valid("json");
    if (!(await verifyDeviceSignature(accountKey, device))) throw badDeviceSignature();
    const created = await insertUser(c.var.dbs.directory, {
      username,
      password: await hashPassword(password),
      accountKey,
      device,
    });
    if (!created) throw new AppError("conflict", "username is taken");
    return c.json({ userId: created.user.id, username: created.user.username, deviceId: created.deviceId }, 201);
  })
  .openapi(login, async (c) => {
    const body = c.req.valid("json");
    const user = await checkCredentials(c.var.dbs.directory, body.username, body.password);
    const refreshToken = await newRefreshToken();
    const ttl = c.var.config.refreshTtlSeconds;
    let device: { id: number; status: "active" | "pending" };
    let sessionId: number;
    if ("deviceId" in body) {
      const known = await findDevice(c.var.dbs.directory, body.deviceId);
      if (!known || known.userId !== user.id || known.status === "revoked") {
        throw new AppError("unauthorized", "unknown or revoked device");
      }
      device = { id: known.id, status: known.status };
      sessionId = await openSession(c.var.dbs.directory, {
        userId: user.id,
        deviceId: device.id,
        refreshHash: refreshToken.hash,
        refreshTtlSeconds: ttl,
      });
    } else {
      // Read before the write: a failure after it would answer 500 for a device that exists.
      const active = (await listOwnDevices(c.var.dbs.directory, user.id))
        .filter((d) => d.status === "active")
        .map((d) => d.id);
      const opened = await openSessionOnNewDevice(c.var.dbs.directory, {
        userId: user.id,
        device: body.device,
        refreshHash: refreshToken.hash,
        refreshTtlSeconds: ttl,
      });
      const pending = opened.device;
      device = { id: pending.id, status: "pending" };
      sessionId = opened.sessionId;
      if (active.length > 0) {
        publishToInboxes(
          c,
          { type: "devicePending", data: { deviceId: pending.id, name: pending.name } },
          [user.id],
          active,
        );
      }
    }
    const session = {
      userId: user.id,
      deviceId: device.id,
      sessionId,
      deviceStatus: device.status,
      refreshToken: refreshToken.token,
    };
    return c.json(await sessionBody(c, session), 200);
  })
  .openapi(refresh, async (c) => {
    const presented = await sha256(c.req.valid("json").refreshToken);
    const next = await newRefreshToken();
    const outcome = await rotateRefreshToken(c.var.dbs.directory, presented, next.hash, c.var.config.refreshTtlSeconds);
    if (outcome.kind === "reused") {
      // Someone holds a copy of this token: end the whole session, the holder of the new token included.
      await endSessionsNow(c, outcome.userId, { sessionIds: [outcome.sessionId] });
      throw new AppError("unauthorized", "refresh token already used: the session has ended");
    }
    if (outcome.kind === "invalid") throw new AppError("unauthorized", "invalid or expired refresh token");
    return c.json(await sessionBody(c, { ...outcome, refreshToken: next.token }), 200);
  })
  .openapi(reset, async (c) => {
    const { username, password, accountKey, device } = c.req.valid("json");
    const user = await checkCredentials(c.var.dbs.directory, username, password);
    if (!(await verifyDeviceSignature(accountKey, device))) throw badDeviceSignature();
    const [oldDevices, memberships, peers] = await Promise.all([
      listOwnDevices(c.var.dbs.directory, user.id),
      membershipsAcross(c.var.dbs, user.id),
      peersAcross(c.var.dbs, user.id),
    ]);
    const refreshToken = await newRefreshToken();
    const created = await resetIdentity(c.var.dbs, {
      userId: user.id,
      accountKey,
      device,
      refreshHash: refreshToken.hash,
      refreshTtlSeconds: c.var.config.refreshTtlSeconds,
    });
    await closeSocketsOf(
      c,
      user.id,
      { deviceIds: oldDevices.map((d) => d.id) },
      memberships.map((m) => m.conversationId),
    );
    const others = peers.filter((id) => id !== user.id);
    publishToInboxes(c, { type: "identityChanged", data: { userId: user.id, username: user.username } }, others);
    const session = { userId: user.id, ...created, deviceStatus: "active" as const, refreshToken: refreshToken.token };
    return c.json(await sessionBody(c, session), 200);
  });
