import { createRoute } from "@hono/zod-openapi";
import { findUserByUsername, insertUser, updatePasswordHash } from "../db/users";
import { AppError } from "../lib/errors";
import { issueToken } from "../lib/jwt";
import { createRouter, errors, json, jsonBody } from "../lib/openapi";
import { hashPassword, needsRehash, verifyPassword } from "../lib/passwords";
import { authRateLimit, loginUsernameRateLimit } from "../middleware/rate-limit";
import { loginBody, registerBody, registeredSchema, tokenSchema } from "../schemas/auth";

const register = createRoute({
  operationId: "register",
  method: "post",
  path: "/register",
  tags: ["accounts"],
  summary: "Create an account",
  security: [],
  middleware: [authRateLimit],
  request: { body: jsonBody(registerBody) },
  responses: { 201: json(registeredSchema, "Registered"), ...errors(400, 409, 413, 415, 422, 429) },
});

const login = createRoute({
  operationId: "login",
  method: "post",
  path: "/login",
  tags: ["accounts"],
  summary: "Get an access token",
  security: [],
  middleware: [authRateLimit, loginUsernameRateLimit],
  request: { body: jsonBody(loginBody) },
  responses: { 200: json(tokenSchema, "Logged in"), ...errors(400, 401, 413, 415, 422, 429) },
});

export const authRoutes = createRouter()
  .openapi(register, async (c) => {
    const { username, password, publicKey } = c.req.valid("json");
    const user = await insertUser(c.var.db, {
      username,
      password: await hashPassword(password),
      publicKey,
    });
    if (!user) throw new AppError("conflict", "username is taken");
    return c.json({ userId: user.id, username: user.username }, 201);
  })
  .openapi(login, async (c) => {
    const { username, password } = c.req.valid("json");
    const user = await findUserByUsername(c.var.db, username);
    const stored = user && {
      hash: user.passwordHash,
      salt: user.passwordSalt,
      algorithm: user.passwordAlgorithm,
      iterations: user.passwordIterations,
    };
    // verifyPassword runs in full for an unknown username too, so both cost the same time.
    const valid = await verifyPassword(password, stored);
    if (!user || !stored || !valid) {
      throw new AppError("unauthorized", "wrong username or password");
    }
    if (needsRehash(stored)) {
      await updatePasswordHash(c.var.db, user.id, await hashPassword(password));
    }
    const expiresIn = c.var.config.tokenTtlSeconds;
    const accessToken = await issueToken(c.var.config.jwt, user, expiresIn);
    return c.json({ accessToken, tokenType: "Bearer" as const, expiresIn }, 200);
  });
