import { createRoute } from "@hono/zod-openapi";
import { deleteAttachmentsOfUser } from "../attachments/lifecycle";
import { activeDevicesOf } from "../db/devices";
import { changeSettings, deleteAccount } from "../db/lifecycle";
import { listConversationsAcross } from "../db/user-conversations";
import { findUserById, findUserByUsername } from "../db/users";
import { AppError } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { requirePassword } from "../lib/sessions";
import { requireAuth, requireSession } from "../middleware/auth";
import { presentPublicUser, presentUser } from "../presenters";
import { closeSockets, publishMembership } from "../realtime/publish";
import { userTag } from "../realtime/sockets";
import { passwordProofBody } from "../schemas/auth";
import { username as usernameRule } from "../schemas/common";
import { publicUserSchema, settingsBody, settingsSchema, usernameParam, userSchema } from "../schemas/users";

// A valid token whose user no longer exists is treated as unauthenticated.
const userGone = () => new AppError("unauthorized", "the token's user does not exist");
const tags = ["accounts"];

const me = createRoute({
  operationId: "getMe",
  method: "get",
  path: "/me",
  tags,
  summary: "The caller's account, with its settings",
  security: bearer,
  middleware: [requireSession],
  responses: { 200: json(userSchema, "The caller"), ...errors(401) },
});

const getSettings = createRoute({
  operationId: "getSettings",
  method: "get",
  path: "/me/settings",
  tags,
  summary: "The caller's settings",
  security: bearer,
  middleware: [requireAuth],
  responses: { 200: json(settingsSchema, "The settings"), ...errors(401, 403) },
});

const putSettings = createRoute({
  operationId: "updateSettings",
  method: "put",
  path: "/me/settings",
  tags,
  summary: "Change the caller's settings",
  security: bearer,
  middleware: [requireAuth],
  request: { body: jsonBody(settingsBody) },
  responses: { 200: json(userSchema, "The caller, with the new settings"), ...errors(400, 401, 403, 413, 415, 422) },
});

const deleteMe = createRoute({
  operationId: "deleteAccount",
  method: "delete",
  path: "/me",
  tags,
  summary:
    "Delete the account: sessions end, devices go, the user leaves every conversation, messages become tombstones",
  security: bearer,
  middleware: [requireAuth],
  request: { body: jsonBody(passwordProofBody) },
  responses: { 204: { description: "Deleted; the username is free again" }, ...errors(400, 401, 403, 413, 415, 422) },
});

const lookup = createRoute({
  operationId: "getUser",
  method: "get",
  path: "/{username}",
  tags,
  summary: "Look up a user's account key and active devices (case-insensitive)",
  security: bearer,
  middleware: [requireAuth],
  request: { params: usernameParam },
  responses: { 200: json(publicUserSchema, "The user"), ...errors(401, 403, 404) },
});

export const userRoutes = createRouter()
  .openapi(me, async (c) => {
    const user = await findUserById(c.var.dbs.directory, c.var.user.userId);
    if (!user) throw userGone();
    return c.json(presentUser(user), 200);
  })
  .openapi(getSettings, async (c) => {
    const user = await findUserById(c.var.dbs.directory, c.var.user.userId);
    if (!user) throw userGone();
    return c.json(presentUser(user).settings, 200);
  })
  .openapi(putSettings, async (c) => {
    const user = await changeSettings(c.var.dbs, c.var.user.userId, c.req.valid("json"));
    if (!user) throw userGone();
    return c.json(presentUser(user), 200);
  })
  .openapi(deleteMe, async (c) => {
    const me = c.var.user;
    const user = await requirePassword(
      await findUserById(c.var.dbs.directory, me.userId),
      c.req.valid("json").password,
    );
    const { conversations } = await listConversationsAcross(c.var.dbs, me, { limit: Number.MAX_SAFE_INTEGER - 1 });
    await deleteAccount(c.var.dbs, me.userId);
    // The account is gone already: a failure here is logged, not answered; the tombstones hide what is
    // left and the cleanup job deletes it (deleteAbandonedAttachments).
    await Promise.all(
      c.var.dbs.shards.map(({ db }) =>
        deleteAttachmentsOfUser({ db, bucket: c.env.ATTACHMENTS }, me.userId).catch((err) =>
          console.error(`account deletion: attachments not all deleted: ${err instanceof Error ? err.name : "error"}`),
        ),
      ),
    );
    await closeSockets(c, {
      userId: me.userId,
      tags: [userTag(me.userId)],
      conversationIds: conversations.map((v) => v.id),
    });
    const member = { userId: me.userId, username: user.username };
    await Promise.all(
      conversations.map((view) =>
        publishMembership(c, { type: "participantRemoved", conversationId: view.id, member, by: me.userId }, view),
      ),
    );
    return c.body(null, 204);
  })
  .openapi(lookup, async (c) => {
    const { username } = c.req.valid("param");
    const user = usernameRule.safeParse(username).success
      ? await findUserByUsername(c.var.dbs.directory, username)
      : undefined;
    if (!user) throw new AppError("not_found", "no such user");
    return c.json(presentPublicUser(user, await activeDevicesOf(c.var.dbs.directory, [user.id])), 200);
  });
