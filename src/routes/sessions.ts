import { createRoute, z } from "@hono/zod-openapi";
import { listLiveSessions } from "../db/sessions";
import { findUserById, passwordUpdate } from "../db/users";
import { AppError } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { hashPassword } from "../lib/passwords";
import { endSessionsNow, requirePassword } from "../lib/sessions";
import { requireAuth, requireSession } from "../middleware/auth";
import { changePasswordBody, passwordProofBody, sessionIdParam, sessionInfoSchema } from "../schemas/auth";

const tags = ["sessions"];

/** A body that may be left out (an empty body counts as `{}`). */
const optionalJson = <T extends z.ZodType>(schema: T) => ({
  required: false,
  content: { "application/json": { schema } },
});

const logout = createRoute({
  operationId: "logout",
  method: "post",
  path: "/logout",
  tags,
  summary: "End this session (the device stays)",
  security: bearer,
  middleware: [requireSession],
  responses: { 204: { description: "Ended: its tokens are refused and its sockets closed (4001)" }, ...errors(401) },
});

const list = createRoute({
  operationId: "listSessions",
  method: "get",
  path: "/sessions",
  tags,
  summary: "The caller's live sessions",
  security: bearer,
  middleware: [requireAuth],
  responses: { 200: json(z.array(sessionInfoSchema), "Live sessions, newest first"), ...errors(401, 403) },
});

const end = createRoute({
  operationId: "endSession",
  method: "delete",
  path: "/sessions/{sessionId}",
  tags,
  summary: "End one of the caller's sessions (the password unless it is the current one)",
  security: bearer,
  middleware: [requireAuth],
  request: { params: sessionIdParam, body: optionalJson(passwordProofBody) },
  responses: { 204: { description: "Ended" }, ...errors(401, 403, 404, 422) },
});

const changePassword = createRoute({
  operationId: "changePassword",
  method: "post",
  path: "/password",
  tags,
  summary: "Change the password; every other session ends",
  security: bearer,
  middleware: [requireAuth],
  request: { body: jsonBody(changePasswordBody) },
  responses: { 204: { description: "Changed" }, ...errors(400, 401, 403, 413, 415, 422) },
});

export const sessionRoutes = createRouter()
  .openapi(logout, async (c) => {
    const me = c.var.user;
    await endSessionsNow(c, me.userId, { sessionIds: [me.sessionId] });
    return c.body(null, 204);
  })
  .openapi(list, async (c) => {
    const me = c.var.user;
    const sessions = await listLiveSessions(c.var.dbs.directory, me.userId);
    return c.json(
      sessions.map((s) => ({
        sessionId: s.id,
        deviceId: s.deviceId,
        createdAt: s.createdAt,
        lastUsedAt: s.lastUsedAt,
        current: s.id === me.sessionId,
      })),
      200,
    );
  })
  .openapi(end, async (c) => {
    const me = c.var.user;
    const { sessionId } = c.req.valid("param");
    const live = await listLiveSessions(c.var.dbs.directory, me.userId);
    if (!live.some((s) => s.id === sessionId)) throw new AppError("not_found", "no such session");
    if (sessionId !== me.sessionId) {
      await requirePassword(await findUserById(c.var.dbs.directory, me.userId), c.req.valid("json")?.password);
    }
    await endSessionsNow(c, me.userId, { sessionIds: [sessionId] });
    return c.body(null, 204);
  })
  .openapi(changePassword, async (c) => {
    const me = c.var.user;
    const { currentPassword, newPassword } = c.req.valid("json");
    await requirePassword(await findUserById(c.var.dbs.directory, me.userId), currentPassword);
    await passwordUpdate(c.var.dbs.directory, me.userId, await hashPassword(newPassword));
    await endSessionsNow(c, me.userId, { exceptSessionId: me.sessionId });
    return c.body(null, 204);
  });
