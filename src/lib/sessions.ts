import type { Context } from "hono";
import type * as Wire from "../../contract";
import { endSessionsEverywhere } from "../db/lifecycle";
import { liveSessionsWhere } from "../db/sessions";
import { membershipsAcross } from "../db/user-conversations";
import { passwordOf, type UserRow } from "../db/users";
import type { AppEnv } from "../env";
import { closeSockets } from "../realtime/publish";
import { deviceTag, sessionTag } from "../realtime/sockets";
import { randomSecret, sha256 } from "./crypto";
import { AppError } from "./errors";
import { issueToken } from "./jwt";
import { verifyPassword } from "./passwords";

/** A new opaque refresh token and the hash that is all the database keeps of it. */
export async function newRefreshToken(): Promise<{ token: string; hash: Uint8Array }> {
  const token = randomSecret();
  return { token, hash: await sha256(token) };
}

/** The Session body: a fresh access token for the session, with its refresh token. */
export async function sessionBody(
  c: Context<AppEnv>,
  session: {
    userId: number;
    deviceId: number;
    sessionId: number;
    deviceStatus: Wire.DeviceStatus;
    refreshToken: string;
  },
): Promise<Wire.Session> {
  const { tokenTtlSeconds, refreshTtlSeconds, jwt } = c.var.config;
  return {
    accessToken: await issueToken(jwt, session, tokenTtlSeconds),
    tokenType: "Bearer",
    expiresIn: tokenTtlSeconds,
    refreshToken: session.refreshToken,
    refreshExpiresIn: refreshTtlSeconds,
    sessionId: session.sessionId,
    deviceId: session.deviceId,
    deviceStatus: session.deviceStatus,
  };
}

/** A route that asks for the password again: 403 if it is missing or wrong (the caller is authenticated, the proof is not). */
export async function requirePassword(user: UserRow | undefined, password: string | undefined): Promise<UserRow> {
  if (!user) throw new AppError("unauthorized", "the token's user does not exist");
  if (password === undefined) throw new AppError("forbidden", "this needs your password");
  if (!(await verifyPassword(password, passwordOf(user)))) throw new AppError("forbidden", "wrong password");
  return user;
}

/** Ends sessions now (their tokens are refused from the next request) and closes their sockets with 4001. */
export async function endSessionsNow(
  c: Context<AppEnv>,
  userId: number,
  where: { sessionIds?: number[]; deviceId?: number; exceptSessionId?: number },
): Promise<number[]> {
  const live = await liveSessionsWhere(c.var.dbs.directory, { ...where, userId });
  const ended = await endSessionsEverywhere(c.var.dbs, userId, live);
  await closeSocketsOf(c, userId, { sessionIds: ended });
  return ended;
}

/** Closes (4001) the sockets of some sessions or devices of a user, wherever they are open. */
export async function closeSocketsOf(
  c: Context<AppEnv>,
  userId: number,
  target: { sessionIds?: number[]; deviceIds?: number[] },
  conversationIds?: number[],
): Promise<void> {
  const tags = [...(target.sessionIds ?? []).map(sessionTag), ...(target.deviceIds ?? []).map(deviceTag)];
  if (tags.length === 0) return;
  const ids = conversationIds ?? (await membershipsAcross(c.var.dbs, userId)).map((m) => m.conversationId);
  await closeSockets(c, { userId, tags, conversationIds: ids });
}
