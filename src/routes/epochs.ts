import { createRoute, z } from "@hono/zod-openapi";
import { consentingTo, recordConsentsOrLog } from "../db/consents";
import { findConversationForUser } from "../db/conversations";
import { activeDevicesOfParticipants } from "../db/coverage";
import { commitEpoch, commitEpochAndRead } from "../db/epochs";
import { activeDevices, readAccountSnapshot } from "../db/mirror";
import { keysForDevice, participation } from "../db/participation";
import { admitToShard } from "../db/user-conversations";
import { findUserByUsername } from "../db/users";
import { assertExactCoverage, staleEpoch } from "../lib/coverage";
import { AppError, notAcceptedYet, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { shardFor } from "../lib/shard";
import { requireAuth } from "../middleware/auth";
import { conversationRateLimit } from "../middleware/rate-limit";
import { presentConversation, presentConversationDevice, presentKey } from "../presenters";
import { publishEpochChanged, publishMembership } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import {
  commitEpochBody,
  conversationSchema,
  epochCommittedSchema,
  keySchema,
  participantBody,
} from "../schemas/conversations";
import { conversationDeviceSchema } from "../schemas/users";
import { unknownUsers } from "./conversations";
import { assertMayJoin, MAX_PARTICIPANTS } from "./membership-rules";

const tags = ["key epochs"];
const guarded = { security: bearer, middleware: [requireAuth] };

const devices = createRoute({
  operationId: "listConversationDevices",
  method: "get",
  path: "/{id}/devices",
  tags,
  summary: "Every active device of every current participant: who the next epoch's key is wrapped for",
  ...guarded,
  request: { params: conversationIdParam },
  responses: { 200: json(z.array(conversationDeviceSchema), "The devices"), ...errors(401, 403, 422) },
});

const keys = createRoute({
  operationId: "listKeys",
  method: "get",
  path: "/{id}/keys",
  tags,
  summary: "Every epoch key wrapped for the caller's device since the caller joined, newest first",
  ...guarded,
  request: { params: conversationIdParam },
  responses: { 200: json(z.array(keySchema), "The keys"), ...errors(401, 403, 422) },
});

const commit = createRoute({
  operationId: "commitEpoch",
  method: "post",
  path: "/{id}/epochs",
  tags,
  summary: "Commit the next epoch: one wrapped key per device of GET /conversations/{id}/devices",
  ...guarded,
  request: { params: conversationIdParam, body: jsonBody(commitEpochBody) },
  responses: { 201: json(epochCommittedSchema, "Committed"), ...errors(400, 401, 403, 409, 413, 415, 422) },
});

const addParticipant = createRoute({
  operationId: "addParticipant",
  method: "post",
  path: "/{id}/participants",
  tags: ["conversations"],
  summary: "Add a participant: itself an epoch commit, wrapped for every device including the newcomer's",
  security: bearer,
  middleware: [requireAuth, conversationRateLimit],
  request: { params: conversationIdParam, body: jsonBody(participantBody) },
  responses: {
    201: json(conversationSchema, "The conversation, as the caller sees it"),
    ...errors(400, 401, 403, 409, 413, 415, 422, 429),
  },
});

const alreadyIn = (username: string) => new AppError("conflict", `${username} is already a participant`);

export const epochRoutes = createRouter()
  .openapi(devices, async (c) => {
    const { id } = c.req.valid("param");
    const { db } = shardFor(c, id);
    if (!(await participation(db, id, c.var.user.userId))) throw notAParticipant();
    return c.json((await activeDevicesOfParticipants(db, id)).map(presentConversationDevice), 200);
  })
  .openapi(keys, async (c) => {
    const { id } = c.req.valid("param");
    const me = c.var.user;
    const { db } = shardFor(c, id);
    const joined = await participation(db, id, me.userId);
    if (!joined) throw notAParticipant();
    return c.json((await keysForDevice(db, id, me.deviceId, joined.joinedEpoch)).map(presentKey), 200);
  })
  .openapi(commit, async (c) => {
    const { id } = c.req.valid("param");
    const { epoch, keys: uploads } = c.req.valid("json");
    const me = c.var.user;
    const { db } = shardFor(c, id);
    const conversation = await findConversationForUser(db, id, me);
    if (!conversation) throw notAParticipant();
    if (conversation.status === "invited") throw notAcceptedYet();
    if (epoch !== conversation.epoch + 1) throw staleEpoch(conversation.epoch);
    const expected = await activeDevicesOfParticipants(db, id);
    assertExactCoverage(
      expected.map((d) => d.deviceId),
      uploads.map((k) => k.deviceId),
    );
    if (!(await commitEpoch(db, { conversationId: id, epoch, by: me, keys: uploads }))) {
      const now = await findConversationForUser(db, id, me);
      if (!now) throw notAParticipant();
      throw staleEpoch(now.epoch);
    }
    publishEpochChanged(
      c,
      { conversationId: id, epoch, by: { userId: me.userId, deviceId: me.deviceId } },
      conversation.participants.map((p) => p.userId),
    );
    return c.json({ epoch }, 201);
  })
  .openapi(addParticipant, async (c) => {
    const { id } = c.req.valid("param");
    const { username, epoch, keys: uploads } = c.req.valid("json");
    const me = c.var.user;
    const shard = shardFor(c, id);
    const { db } = shard;
    const [conversation, user] = await Promise.all([
      findConversationForUser(db, id, me),
      findUserByUsername(c.var.dbs.directory, username),
    ]);
    if (!conversation) throw notAParticipant();
    if (conversation.status === "invited") throw notAcceptedYet();
    if (!user) throw unknownUsers([{ username, path: "username" }]);
    if (conversation.participants.some((p) => p.userId === user.id)) throw alreadyIn(user.username);
    if (conversation.participants.length >= MAX_PARTICIPANTS) {
      throw new AppError("conflict", `a conversation holds at most ${MAX_PARTICIPANTS} participants`);
    }
    await assertMayJoin(c, [user.id], [user.id]);
    if (epoch !== conversation.epoch + 1) throw staleEpoch(conversation.epoch);
    const [current, newcomerAccount] = await Promise.all([
      activeDevicesOfParticipants(db, id),
      readAccountSnapshot(c.var.dbs.directory, [user.id]),
    ]);
    const newcomerDevices = activeDevices(newcomerAccount);
    assertExactCoverage(
      [...current.map((d) => d.deviceId), ...newcomerDevices.map((d) => d.id)],
      uploads.map((k) => k.deviceId),
    );
    const consents = await consentingTo(c.var.dbs.directory, [user.id], me.userId);
    const status = consents.has(user.id) ? ("member" as const) : ("invited" as const);
    const newcomer = { userId: user.id, username: user.username, status };
    // Only now that the request is valid: the newcomer's devices reach the shard before the commit,
    // whose coverage check reads them there.
    await admitToShard(c.var.dbs, shard, newcomerAccount);
    const outcome = await commitEpochAndRead(db, { conversationId: id, epoch, by: me, keys: uploads, newcomer });
    if (!outcome.committed) {
      const now = await findConversationForUser(db, id, me);
      if (!now) throw notAParticipant();
      if (now.participants.some((p) => p.userId === user.id)) throw alreadyIn(user.username);
      throw staleEpoch(now.epoch);
    }
    // Read in the commit's own batch: a read failing after the commit would answer 500 for a committed add.
    const updated = outcome.view;
    if (!updated) throw notAParticipant();
    // The adder started contact with the newcomer.
    await recordConsentsOrLog(c.var.dbs.directory, me.userId, [user.id]);
    const createdAt = updated.key?.createdAt ?? new Date().toISOString();
    const keyRows = uploads.map((k) => ({
      ...k,
      conversationId: id,
      epoch,
      wrappedByUser: me.userId,
      wrappedByDevice: me.deviceId,
      createdAt,
    }));
    const membership = { type: "participantAdded" as const, conversationId: id, member: newcomer, by: me.userId };
    await publishMembership(c, membership, updated, { keys: keyRows, deviceIds: newcomerDevices.map((d) => d.id) });
    publishEpochChanged(
      c,
      { conversationId: id, epoch, by: { userId: me.userId, deviceId: me.deviceId } },
      conversation.participants.map((p) => p.userId),
    );
    return c.json(presentConversation(updated), 201);
  });
