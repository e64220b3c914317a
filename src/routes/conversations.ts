import { createRoute, z } from "@hono/zod-openapi";
import {
  addParticipant,
  createConversation,
  findConversationForUser,
  listConversationsForUser,
  removeParticipant,
} from "../db/conversations";
import { findUserByUsername, findUsersByUsernames, isUniqueViolation } from "../db/users";
import { AppError, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { isUsername, usernameKey } from "../lib/usernames";
import { requireAuth } from "../middleware/auth";
import { presentConversation } from "../presenters";
import { publishConversationCreated, publishMembership } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import {
  conversationSchema,
  createConversationBody,
  participantBody,
  participantParam,
} from "../schemas/conversations";

/** 422 naming every username that does not exist. */
function unknownUsers(entries: { username: string; path: string }[]) {
  return new AppError("validation_failed", `unknown username: ${entries.map((e) => e.username).join(", ")}`, {
    details: entries.map(({ username, path }) => ({ path, message: `unknown user: ${username}` })),
  });
}

const alreadyIn = (username: string) => new AppError("conflict", `${username} is already a participant`);

const tags = ["conversations"];
const guarded = { security: bearer, middleware: [requireAuth] };

const create = createRoute({
  operationId: "createConversation",
  method: "post",
  path: "/",
  tags,
  summary: "Create a conversation (the caller included, each participant with its own wrapped key)",
  ...guarded,
  request: { body: jsonBody(createConversationBody) },
  responses: { 201: json(conversationSchema, "Created, as the caller sees it"), ...errors(400, 401, 413, 415, 422) },
});

const list = createRoute({
  operationId: "listConversations",
  method: "get",
  path: "/",
  tags,
  summary: "The caller's conversations, most recent activity first",
  ...guarded,
  responses: { 200: json(z.array(conversationSchema), "The caller's conversations"), ...errors(401) },
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

const addParticipantRoute = createRoute({
  operationId: "addParticipant",
  method: "post",
  path: "/{id}/participants",
  tags,
  summary: "Add a participant with their wrapped conversation key",
  ...guarded,
  request: { params: conversationIdParam, body: jsonBody(participantBody) },
  responses: {
    201: json(conversationSchema, "The conversation, as the caller sees it"),
    ...errors(400, 401, 403, 409, 413, 415, 422),
  },
});

const removeParticipantRoute = createRoute({
  operationId: "removeParticipant",
  method: "delete",
  path: "/{id}/participants/{username}",
  tags,
  summary: "Remove a participant, or leave (remove yourself)",
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
    const found = await findUsersByUsernames(
      c.var.db,
      body.participants.map((p) => p.username),
    );
    const idByName = new Map(found.map((u) => [usernameKey(u.username), u]));
    const unknown = body.participants.flatMap((p, index) =>
      idByName.has(usernameKey(p.username)) ? [] : [{ username: p.username, path: `participants.${index}.username` }],
    );
    if (unknown.length > 0) throw unknownUsers(unknown);
    const members = body.participants.map((p) => {
      const user = idByName.get(usernameKey(p.username))!;
      return { userId: user.id, username: user.username, encryptedKey: p.encryptedKey };
    });
    if (!members.some((m) => m.userId === me.userId)) {
      throw new AppError("validation_failed", "participants must include the creator", {
        details: [{ path: "participants", message: "must include the creator" }],
      });
    }
    const conversation = await createConversation(c.var.db, {
      title: body.title ?? null,
      creatorId: me.userId,
      members,
    });
    publishConversationCreated(c, conversation, members);
    return c.json(presentConversation(conversation), 201);
  })
  .openapi(list, async (c) => {
    const conversations = await listConversationsForUser(c.var.db, c.var.user.userId);
    return c.json(conversations.map(presentConversation), 200);
  })
  .openapi(get, async (c) => {
    const conversation = await findConversationForUser(c.var.db, c.req.valid("param").id, c.var.user.userId);
    if (!conversation) throw notAParticipant();
    return c.json(presentConversation(conversation), 200);
  })
  .openapi(addParticipantRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { username, encryptedKey } = c.req.valid("json");
    const me = c.var.user;
    const [conversation, user] = await Promise.all([
      findConversationForUser(c.var.db, id, me.userId),
      findUserByUsername(c.var.db, username),
    ]);
    if (!conversation) throw notAParticipant();
    if (!user) throw unknownUsers([{ username, path: "username" }]);
    if (conversation.participants.some((p) => p.userId === user.id)) throw alreadyIn(user.username);
    const member = { userId: user.id, username: user.username, encryptedKey };
    let added: Awaited<ReturnType<typeof addParticipant>>;
    try {
      added = await addParticipant(c.var.db, id, me.userId, member);
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyIn(user.username);
      throw err;
    }
    if (!added) throw notAParticipant();
    // The insert is the request's last statement: the answer is built from what was read before it.
    const updated = { ...conversation, participants: [...conversation.participants, added] };
    await publishMembership(c, { type: "participantAdded", conversationId: id, member, by: me.userId }, updated);
    return c.json(presentConversation(updated), 201);
  })
  .openapi(removeParticipantRoute, async (c) => {
    const { id } = c.req.valid("param");
    const me = c.var.user;
    const conversation = await findConversationForUser(c.var.db, id, me.userId);
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
