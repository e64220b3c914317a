import { createRoute } from "@hono/zod-openapi";
import { findUserById, findUserByUsername, updatePublicKey } from "../db/users";
import { AppError } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { requireAuth } from "../middleware/auth";
import { presentPublicUser, presentUser } from "../presenters";
import { username as usernameRule } from "../schemas/common";
import { publicKeyBody, publicUserSchema, usernameParam, userSchema } from "../schemas/users";

// A valid token whose user no longer exists is treated as unauthenticated.
const userGone = () => new AppError("unauthorized", "the token's user does not exist");

const me = createRoute({
  operationId: "getMe",
  method: "get",
  path: "/me",
  tags: ["accounts"],
  summary: "The caller's account",
  security: bearer,
  middleware: [requireAuth],
  responses: { 200: json(userSchema, "The caller"), ...errors(401) },
});

const rotateKey = createRoute({
  operationId: "updatePublicKey",
  method: "put",
  path: "/me/public-key",
  tags: ["accounts"],
  summary: "Replace the caller's public key",
  security: bearer,
  middleware: [requireAuth],
  request: { body: jsonBody(publicKeyBody) },
  responses: { 200: json(userSchema, "The caller, with the new key"), ...errors(400, 401, 413, 415, 422) },
});

const lookup = createRoute({
  operationId: "getUser",
  method: "get",
  path: "/{username}",
  tags: ["accounts"],
  summary: "Look up a user's public key (case-insensitive)",
  security: bearer,
  middleware: [requireAuth],
  request: { params: usernameParam },
  responses: { 200: json(publicUserSchema, "The user"), ...errors(401, 404) },
});

export const userRoutes = createRouter()
  .openapi(me, async (c) => {
    const user = await findUserById(c.var.db, c.var.user.userId);
    if (!user) throw userGone();
    return c.json(presentUser(user), 200);
  })
  .openapi(rotateKey, async (c) => {
    const user = await updatePublicKey(c.var.db, c.var.user.userId, c.req.valid("json").publicKey);
    if (!user) throw userGone();
    return c.json(presentUser(user), 200);
  })
  .openapi(lookup, async (c) => {
    const { username } = c.req.valid("param");
    const user = usernameRule.safeParse(username).success ? await findUserByUsername(c.var.db, username) : undefined;
    if (!user) throw new AppError("not_found", "no such user");
    return c.json(presentPublicUser(user), 200);
  });
