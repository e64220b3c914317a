import { createRoute, z } from "@hono/zod-openapi";
import { blockUser, listBlocked, unblockUser } from "../db/blocks";
import { findUserByUsername } from "../db/users";
import { AppError } from "../lib/errors";
import { bearer, createRouter, errors, json } from "../lib/openapi";
import { requireAuth } from "../middleware/auth";
import { blockedUserSchema } from "../schemas/blocks";
import { usernameParam } from "../schemas/users";

const guarded = { tags: ["accounts"], security: bearer, middleware: [requireAuth] };
const done = { description: "Done (also when it already was)" };

const list = createRoute({
  ...guarded,
  operationId: "listBlocked",
  method: "get",
  path: "/",
  summary: "The people the caller has blocked",
  responses: { 200: json(z.array(blockedUserSchema), "Blocked users, oldest block first"), ...errors(401) },
});

const block = createRoute({
  ...guarded,
  operationId: "blockUser",
  method: "put",
  path: "/{username}",
  summary: "Block someone: they can no longer start a conversation with, or add, the caller",
  request: { params: usernameParam },
  responses: { 204: done, ...errors(401, 404, 422) },
});

const unblock = createRoute({
  ...guarded,
  operationId: "unblockUser",
  method: "delete",
  path: "/{username}",
  summary: "Unblock someone",
  request: { params: usernameParam },
  responses: { 204: done, ...errors(401, 404) },
});

/** `/users/me/blocked`: blocking is account data, kept apart from conversations. */
export const blockRoutes = createRouter()
  .openapi(list, async (c) => c.json(await listBlocked(c.var.dbs.directory, c.var.user.userId), 200))
  .openapi(block, async (c) => {
    const target = await findUserByUsername(c.var.dbs.directory, c.req.valid("param").username);
    if (!target) throw new AppError("not_found", "no such user");
    if (target.id === c.var.user.userId) {
      throw new AppError("validation_failed", "you cannot block yourself", {
        details: [{ path: "username", message: "must be someone else" }],
      });
    }
    await blockUser(c.var.dbs.directory, c.var.user.userId, target.id);
    return c.body(null, 204);
  })
  .openapi(unblock, async (c) => {
    const target = await findUserByUsername(c.var.dbs.directory, c.req.valid("param").username);
    if (!target) throw new AppError("not_found", "no such user");
    await unblockUser(c.var.dbs.directory, c.var.user.userId, target.id);
    return c.body(null, 204);
  });
