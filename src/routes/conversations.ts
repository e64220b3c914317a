import { createRoute, z } from "@hono/zod-openapi";
import {
  createConversation,
  findConversationForUser,
  listConversationsForUser,
  removeParticipant,
} from "../db/conversations";
import { activeDevicesOf } from "../db/devices";
import { findUsersByUsernames } from "../db/users";
import { assertExactCoverage } from "../lib/coverage";
import { AppError, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { isUsername, usernameKey } from "../lib/usernames";
import { requireAuth } from "../middleware/auth";
import { presentConversation } from "../presenters";
import { publishConversationCreated, publishMembership } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import { conversationSchema, createConversationBody, participantParam } from "../schemas/conversations";

/** 422 naming every username that does not exist. */
export function unknownUsers(entries: { username: string; path: string }[]) {
  return new AppError("validation_failed", `unknown username: ${entries.map((e) => e.username).join(", ")}`, {
    details: entries.map(({ username, path }) => ({ path, message: `unknown user: ${username}` })),
  });
}

const tags = ["conversations"];
const guarded = { security: bearer, middleware: [requireAuth] };

const create = createRoute({
  operationId: "createConversation",
  method: "post",
  path: "/",
  tags,
  summary:
    "Create a conversation (the caller included) with epoch 1's key for every active device of every participant",
  ...guarded,
  request: { body: jsonBody(createConversationBody) },
  responses: {
    201: json(conversationSchema, "Created, as the caller sees it"),
    ...errors(400, 401, 403, 413, 415, 422),
  },
});

const list = createRoute({
  operationId: "listConversations",
  method: "get",
  path: "/",
  tags,
  summary: "The caller's conversations, most recent activity first",
  ...guarded,
  responses: { 200: json(z.array(conversationSchema), "The caller's conversations"), ...errors(401, 403) },
});

const get = createRoute({
  operationId: "getConversation",
  method: "get",
  path: "/{id}",
  tags,
  summary: "One conversation",
  ...guarded,
  request: { params: conversationIdParam },
  responses: { 200: json(conversationSchema, "The conversation"), ...errors(401, 403, 422) },
});

const removeParticipantRoute = createRoute({
  operationId: "removeParticipant",
  method: "delete",
  path: "/{id}/participants/{username}",
  tags,
  summary: "Remove a participant, or leave (remove yourself); the epoch then needs rotating",
  ...guarded,
  request: { params: participantParam },
  responses: {
    204: { description: "Removed; their sockets get participantRemoved, then close with 4003" },
    ...errors(401, 403, 404, 422),
  },
});

export const conversationRoutes = createRouter()
  .openapi(create, async (c) => {
    const body = c.req.valid("json");
    const me = c.var.user;
    const found = await findUsersByUsernames(c.var.db, body.participants);
    const byName = new Map(found.map((u) => [usernameKey(u.username), u]));
    const unknown = body.participants.flatMap((username, index) =>
      byName.has(usernameKey(username)) ? [] : [{ username, path: `participants.${index}` }],
    );
    if (unknown.length > 0) throw unknownUsers(unknown);
    const members = body.participants.map((name) => {
      const user = byName.get(usernameKey(name))!;
      return { userId: user.id, username: user.username };
    });
    if (!members.some((m) => m.userId === me.userId)) {
      throw new AppError("validation_failed", "participants must include the creator", {
        details: [{ path: "participants", message: "must include the creator" }],
      });
    }
    const devices = await activeDevicesOf(
      c.var.db,
      members.map((m) => m.userId),
    );
    assertExactCoverage(
      devices.map((d) => d.id),
      body.keys.map((k) => k.deviceId),
    );
    const conversation = await createConversation(c.var.db, {
      title: body.title ?? null,
      by: me,
      members,
      keys: body.keys,
    });
    const now = conversation.createdAt;
    const keys = body.keys.map((k) => ({
      ...k,
      conversationId: conversation.id,
      epoch: 1,
      wrappedByUser: me.userId,
      wrappedByDevice: me.deviceId,
      createdAt: now,
    }));
    const devicesByUser = Map.groupBy(devices, (d) => d.userId);
    publishConversationCreated(
      c,
      conversation,
      keys,
      new Map([...devicesByUser].map(([userId, list]) => [userId, list.map((d) => d.id)])),
    );
    return c.json(presentConversation(conversation), 201);
  })
  .openapi(list, async (c) => {
    const conversations = await listConversationsForUser(c.var.db, c.var.user);
    return c.json(conversations.map(presentConversation), 200);
  })
  .openapi(get, async (c) => {
    const conversation = await findConversationForUser(c.var.db, c.req.valid("param").id, c.var.user);
    if (!conversation) throw notAParticipant();
    return c.json(presentConversation(conversation), 200);
  })
  .openapi(removeParticipantRoute, async (c) => {
    const { id } = c.req.valid("param");
    const me = c.var.user;
    const conversation = await findConversationForUser(c.var.db, id, me);
    if (!conversation) throw notAParticipant();
    const { username } = c.req.valid("param");
    const member = isUsername(username)
      ? conversation.participants.find((p) => usernameKey(p.username) === usernameKey(username))
      : undefined;
    if (!member || !(await removeParticipant(c.var.db, id, member.userId))) {
      throw new AppError("not_found", "no such participant in this conversation");
    }
    await publishMembership(c, { type: "participantRemoved", conversationId: id, member, by: me.userId }, conversation);
    return c.body(null, 204);
  });
