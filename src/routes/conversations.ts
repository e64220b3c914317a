import { createRoute } from "@hono/zod-openapi";
import { blockUser } from "../db/blocks";
import { consentingTo, recordConsentsOrLog } from "../db/consents";
import { createConversation, findConversationForUser } from "../db/conversations";
import { acceptInvitation, invitation, removeParticipant } from "../db/membership";
import { activeDevices, readAccountSnapshot } from "../db/mirror";
import { admitToShard, listConversationsAcross, placeConversation } from "../db/user-conversations";
import { findUsersByUsernames } from "../db/users";
import { assertExactCoverage } from "../lib/coverage";
import { AppError, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { shardFor } from "../lib/shard";
import { isUsername, usernameKey } from "../lib/usernames";
import { requireAuth } from "../middleware/auth";
import { conversationRateLimit } from "../middleware/rate-limit";
import { presentConversation } from "../presenters";
import { publishAccepted, publishConversationCreated, publishMembership } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import {
  conversationPageSchema,
  conversationSchema,
  createConversationBody,
  declineBody,
  listQuery,
  participantParam,
} from "../schemas/conversations";
import { assertMayJoin, decodeCursor, encodeCursor } from "./membership-rules";

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
  security: bearer,
  middleware: [requireAuth, conversationRateLimit],
  request: { body: jsonBody(createConversationBody) },
  responses: {
    201: json(conversationSchema, "Created, as the caller sees it"),
    ...errors(400, 401, 403, 409, 413, 415, 422, 429),
  },
});

const list = createRoute({
  operationId: "listConversations",
  method: "get",
  path: "/",
  tags,
  summary: "The caller's conversations, most recent activity first, a page at a time",
  ...guarded,
  request: { query: listQuery },
  responses: { 200: json(conversationPageSchema, "A page of the caller's conversations"), ...errors(401, 403, 422) },
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

const accept = createRoute({
  operationId: "acceptConversation",
  method: "post",
  path: "/{id}/accept",
  tags,
  summary: "Accept a message request: the caller becomes a member who may post",
  ...guarded,
  request: { params: conversationIdParam },
  responses: { 200: json(conversationSchema, "The conversation"), ...errors(401, 403, 422) },
});

const decline = createRoute({
  operationId: "declineConversation",
  method: "post",
  path: "/{id}/decline",
  tags,
  summary: "Decline a message request (leave it), optionally blocking whoever added the caller",
  ...guarded,
  request: {
    params: conversationIdParam,
    body: { required: false, content: { "application/json": { schema: declineBody } } },
  },
  responses: {
    204: { description: "Declined: the caller is no longer a participant" },
    ...errors(401, 403, 409, 413, 415, 422),
  },
});

export const conversationRoutes = createRouter()
  .openapi(create, async (c) => {
    const body = c.req.valid("json");
    const me = c.var.user;
    const found = await findUsersByUsernames(c.var.dbs.directory, body.participants);
    const byName = new Map(found.map((u) => [usernameKey(u.username), u]));
    const unknown = body.participants.flatMap((username, index) =>
      byName.has(usernameKey(username)) ? [] : [{ username, path: `participants.${index}` }],
    );
    if (unknown.length > 0) throw unknownUsers(unknown);
    const chosen = body.participants.map((name) => byName.get(usernameKey(name))!);
    if (!chosen.some((u) => u.id === me.userId)) {
      throw new AppError("validation_failed", "participants must include the creator", {
        details: [{ path: "participants", message: "must include the creator" }],
      });
    }
    const others = chosen.filter((u) => u.id !== me.userId).map((u) => u.id);
    await assertMayJoin(
      c,
      chosen.map((u) => u.id),
      others,
    );
    const consenting = await consentingTo(c.var.dbs.directory, others, me.userId);
    const members = chosen.map((user) => {
      const creator = user.id === me.userId;
      return {
        userId: user.id,
        username: user.username,
        role: creator ? ("admin" as const) : ("member" as const),
        status: creator || consenting.has(user.id) ? ("member" as const) : ("invited" as const),
        shareReceipts: user.readReceipts,
      };
    });
    // One read of the members' accounts: their devices for the key check, then the shard's copy.
    const accounts = await readAccountSnapshot(
      c.var.dbs.directory,
      members.map((m) => m.userId),
    );
    const devices = activeDevices(accounts);
    assertExactCoverage(
      devices.map((d) => d.id),
      body.keys.map((k) => k.deviceId),
    );
    const shard = placeConversation(c.var.dbs, c.var.config.shardPlacement);
    await admitToShard(c.var.dbs, shard, accounts);
    const conversation = await createConversation(shard.db, shard.index, {
      title: body.title ?? null,
      by: me,
      members,
      keys: body.keys,
    });
    // The creator started contact with everyone in it.
    await recordConsentsOrLog(c.var.dbs.directory, me.userId, others);
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
    const { limit, cursor } = c.req.valid("query");
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const page = await listConversationsAcross(c.var.dbs, c.var.user, { limit, ...(after ? { after } : {}) });
    const nextCursor = page.next ? encodeCursor(page.next) : null;
    return c.json({ conversations: page.conversations.map(presentConversation), nextCursor }, 200);
  })
  .openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    const conversation = await findConversationForUser(shardFor(c, id).db, id, c.var.user);
    if (!conversation) throw notAParticipant();
    return c.json(presentConversation(conversation), 200);
  })
  .openapi(removeParticipantRoute, async (c) => {
    const { id } = c.req.valid("param");
    const me = c.var.user;
    const { db } = shardFor(c, id);
    const conversation = await findConversationForUser(db, id, me);
    if (!conversation) throw notAParticipant();
    const { username } = c.req.valid("param");
    const member = isUsername(username)
      ? conversation.participants.find((p) => usernameKey(p.username) === usernameKey(username))
      : undefined;
    if (!member) throw new AppError("not_found", "no such participant in this conversation");
    const mine = conversation.participants.find((p) => p.userId === me.userId);
    if (member.userId !== me.userId && mine?.role !== "admin") {
      throw new AppError("forbidden", "only an admin removes others; anyone may leave");
    }
    if (!(await removeParticipant(db, id, member.userId))) {
      throw new AppError("not_found", "no such participant in this conversation");
    }
    await publishMembership(c, { type: "participantRemoved", conversationId: id, member, by: me.userId }, conversation);
    return c.body(null, 204);
  })
  .openapi(accept, async (c) => {
    const { id } = c.req.valid("param");
    const me = c.var.user;
    const { db } = shardFor(c, id);
    const accepted = await acceptInvitation(db, id, me.userId);
    if (!accepted) throw notAParticipant();
    // They accept contact from whoever added them (after the shard's write: see recordConsents).
    if (accepted.addedBy !== null) await recordConsentsOrLog(c.var.dbs.directory, me.userId, [accepted.addedBy]);
    await publishAccepted(c, id, me.userId);
    const conversation = await findConversationForUser(db, id, me);
    if (!conversation) throw notAParticipant();
    return c.json(presentConversation(conversation), 200);
  })
  .openapi(decline, async (c) => {
    const { id } = c.req.valid("param");
    const me = c.var.user;
    const block = c.req.valid("json")?.block === true;
    const { db } = shardFor(c, id);
    const [conversation, mine] = await Promise.all([
      findConversationForUser(db, id, me),
      invitation(db, id, me.userId),
    ]);
    if (!conversation || !mine) throw notAParticipant();
    if (mine.status !== "invited")
      throw new AppError("conflict", "only a message request can be declined; leave instead");
    if (block && mine.addedBy !== null) await blockUser(c.var.dbs.directory, me.userId, mine.addedBy);
    if (await removeParticipant(db, id, me.userId)) {
      const member = conversation.participants.find((p) => p.userId === me.userId)!;
      await publishMembership(
        c,
        { type: "participantRemoved", conversationId: id, member, by: me.userId },
        conversation,
      );
    }
    return c.body(null, 204);
  });
