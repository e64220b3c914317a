import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { verifyToken } from "../lib/jwt";

/** Requires `Authorization: Bearer <token>` and sets `c.var.user`; 401 otherwise. */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("Authorization") ?? "";
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header);
  if (!match) throw new AppError("unauthorized", "missing or malformed bearer token");
  const claims = await verifyToken(c.var.config.jwt, match[1]!);
  if (!claims) throw new AppError("unauthorized", "invalid or expired token");
  c.set("user", claims);
  await next();
});
