import { Hono } from "hono";
import { findUserByUsername, insertUser, updatePasswordHash } from "../db/users";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { issueToken } from "../lib/jwt";
import { hashPassword, needsRehash, verifyPassword } from "../lib/passwords";
import { validate } from "../lib/validator";
import { authRateLimit } from "../middleware/rate-limit";
import { loginBody, registerBody } from "../schemas/auth";

export const authRoutes = new Hono<AppEnv>()
  .use(authRateLimit)
  .post("/register", validate("json", registerBody), async (c) => {
    const { username, password, publicKey } = c.req.valid("json");
    const user = await insertUser(c.var.db, {
      username,
      password: await hashPassword(password),
      publicKey,
    });
    if (!user) throw new AppError("conflict", "username is taken");
    return c.json({ userId: user.id, username: user.username }, 201);
  })
  .post("/login", validate("json", loginBody), async (c) => {
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
    const expiresIn = Number(c.env.TOKEN_TTL_SECONDS) || 3600;
    const accessToken = await issueToken(c.env, user, expiresIn);
    return c.json({ accessToken, tokenType: "Bearer", expiresIn });
  });
