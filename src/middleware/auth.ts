import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { CLOSE_REASON } from "../../contract";
import { liveSession } from "../db/sessions";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { verifyToken } from "../lib/jwt";

async function verifiedIdentity(c: Context<AppEnv>) {
  const header = c.req.header("Authorization") ?? "";
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header);
  if (!match) throw new AppError("unauthorized", "missing or malformed bearer token");
  const claims = await verifyToken(c.var.config.jwt, match[1]!);
  if (!claims) throw new AppError("unauthorized", "invalid or expired token");
  return claims;
}

export const deviceNotLinked = () => new AppError("forbidden", CLOSE_REASON.deviceNotLinked);

/**
 * Checks the token's signature and claims only, for a route that folds the session check into its
 * own statements (POST /messages: see insertMessage). Sets `c.var.user`.
 */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  c.set("user", await verifiedIdentity(c));
  await next();
});

/**
 * Token and a live session (one light query): an ended session's token is refused at once. A
 * pending device passes: only the few routes a pending device may use take this one.
 */
export const requireSession = createMiddleware<AppEnv>(async (c, next) => {
  const identity = await verifiedIdentity(c);
  const session = await liveSession(c.var.dbs.directory, identity);
  if (!session || session.deviceStatus === "revoked") throw new AppError("unauthorized", "session ended");
  c.set("user", identity);
  c.set("deviceStatus", session.deviceStatus);
  await next();
});

/** Token, live session and an active device: every route but the few a pending device may use. */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const identity = await verifiedIdentity(c);
  const session = await liveSession(c.var.dbs.directory, identity);
  if (!session || session.deviceStatus === "revoked") throw new AppError("unauthorized", "session ended");
  if (session.deviceStatus !== "active") throw deviceNotLinked();
  c.set("user", identity);
  c.set("deviceStatus", session.deviceStatus);
  await next();
});
