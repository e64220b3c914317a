import { Hono } from "hono";
import { findUserById, findUserByUsername, updatePublicKey } from "../db/users";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { presentUser } from "../lib/presenters";
import { validate } from "../lib/validator";
import { requireAuth } from "../middleware/auth";
import { publicKeyBody, usernameParam } from "../schemas/users";
import { encodeBase64 } from "../lib/base64";

// A valid token whose user no longer exists is treated as unauthenticated.
const userGone = () => new AppError("unauthorized", "the token's user does not exist");

export const userRoutes = new Hono<AppEnv>()
  .use(requireAuth)
  .get("/me", async (c) => {
    const user = await findUserById(c.var.db, c.var.user.userId);
    if (!user) throw userGone();
    return c.json(presentUser(user));
  })
  .put("/me/public-key", validate("json", publicKeyBody), async (c) => {
    const user = await updatePublicKey(c.var.db, c.var.user.userId, c.req.valid("json").publicKey);
    if (!user) throw userGone();
    return c.json(presentUser(user));
  })
  .get("/:username", async (c) => {
    const parsed = usernameParam.safeParse(c.req.param());
    const user = parsed.success ? await findUserByUsername(c.var.db, parsed.data.username) : undefined;
    if (!user) throw new AppError("not_found", "no such user");
    return c.json({ userId: user.id, username: user.username, publicKey: encodeBase64(user.publicKey) });
  });
