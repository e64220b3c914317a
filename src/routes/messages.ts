import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { deleteAttachmentsOfMessages } from "../attachments/lifecycle";
import { deleteForEveryone } from "../db/message-erasure";
import { insertMessage } from "../db/message-insert";
import { type ByteCharge, listMessages, type NewMessage, whyRefused } from "../db/messages";
import { syncAccounts } from "../db/mirror";
import { participation } from "../db/participation";
import { liveSession } from "../db/sessions";
import type { Shard } from "../db/shards";
import type { AppEnv } from "../env";
import { AppError, notAcceptedYet, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { shardFor } from "../lib/shard";
import { deviceNotLinked, requireAuth, requireToken } from "../middleware/auth";
import { messageRateLimit } from "../middleware/rate-limit";
import { presentMessage } from "../presenters";
import { deliverMessage, publishConversationEvent } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import { historyQuery, messageAckSchema, messageIdParam, messageSchema, sendMessageBody } from "../schemas/messages";

const send = createRoute({
  operationId: "sendMessage",
  method: "post",
  path: "/messages",
  tags: ["messages"],
  summary: "Send a message (ciphertext only); idempotent by clientMessageId",
  description:
    "`attachments` (at most 10) must each have been uploaded by the sender to this conversation and be unused: " +
    "422 names the others. They are linked in the same atomic write as the message, so two messages racing " +
    "for one attachment cannot both commit. The ciphertext counts against the daily byte budget (429, nothing stored).",
  security: bearer,
  middleware: [requireToken, messageRateLimit],
  request: { body: jsonBody(sendMessageBody) },
  responses: {
    201: json(messageAckSchema, "Committed; every connected participant receives `newMessage`"),
    200: json(messageAckSchema, "An idempotent retry: the first call's answer, nothing stored or broadcast"),
    ...errors(400, 401, 403, 409, 413, 415, 422, 429),
  },
});

const history = createRoute({
  operationId: "listMessages",
  method: "get",
  path: "/conversations/{id}/messages",
  tags: ["messages"],
  summary: "A page of history: `before` (or neither) newest first, `after` oldest first",
  security: bearer,
  middleware: [requireAuth],
  request: { params: conversationIdParam, query: historyQuery },
  responses: { 200: json(z.array(messageSchema), "A page of messages"), ...errors(401, 403, 422) },
});

const remove = createRoute({
  operationId: "deleteMessage",
  method: "delete",
  path: "/messages/{messageId}",
  tags: ["messages"],
  summary: "Delete a message for everyone (its sender only): it becomes a tombstone, its ciphertext is erased",
  security: bearer,
  middleware: [requireAuth],
  request: { params: messageIdParam },
  responses: {
    204: { description: "Deleted (again: 204); every connected device gets `messageDeleted`" },
    ...errors(401, 403, 422),
  },
});

/**
 * Inserts the message; if its shard refuses it, reads why, and whether the directory still accepts
 * the session (the commit path itself never pays for these reads). A refusal with no reason on
 * either side means the shard's copy of the sender's session is older than the session (grants are
 * copied when first needed, src/db/mirror.ts): the sender is copied in and the insert tried once more.
 */
async function commitMessage(c: Context<AppEnv>, shard: Shard, message: NewMessage, charge: ByteCharge) {
  const me = c.var.user;
  const first = await insertMessage(shard.db, shard.index, message, me, charge);
  if (first.kind === "created") return { committed: first } as const;
  const [session, refusal] = await Promise.all([
    liveSession(c.var.dbs.directory, me),
    whyRefused(shard.db, message, me.userId, charge),
  ]);
  if (session?.deviceStatus !== "active" || refusal.kind !== "raced") return { committed: null, session, refusal };
  await syncAccounts(c.var.dbs.directory, shard.db, [me.userId]);
  const second = await insertMessage(shard.db, shard.index, message, me, charge);
  if (second.kind === "created") return { committed: second } as const;
  return { committed: null, session, refusal: await whyRefused(shard.db, message, me.userId, charge) };
}

/** Messages: sending (`/messages`) and a conversation's history (`/conversations/{id}/messages`). */
export const messageRoutes = createRouter()
  .openapi(history, async (c) => {
    const { id } = c.req.valid("param");
    const { db } = shardFor(c, id);
    const joined = await participation(db, id, c.var.user.userId);
    if (!joined) throw notAParticipant();
    const page = await listMessages(db, id, c.req.valid("query"), joined.joinedSeq);
    const now = new Date().toISOString();
    return c.json(
      page.map((m) => presentMessage(m, now)),
      200,
    );
  })
  .openapi(send, async (c) => {
    const body = c.req.valid("json");
    const message = {
      conversationId: body.conversationId,
      keyEpoch: body.keyEpoch,
      nonce: body.nonce,
      ciphertext: body.ciphertext,
      authTag: body.authTag,
      associatedData: body.associatedData ?? null,
      signature: body.signature,
      clientMessageId: body.clientMessageId ?? null,
      attachmentIds: body.attachments ?? [],
      relatesTo: body.relatesTo ?? null,
    };
    const charge = { budget: c.var.config.attachments.dailyBytesPerUser, now: new Date() };
    const sent = await commitMessage(c, shardFor(c, body.conversationId), message, charge);
    if (sent.committed) {
      const { id: messageId, seq, createdAt: timestamp } = sent.committed.message;
      deliverMessage(c, presentMessage(sent.committed.message), sent.committed.participantIds);
      return c.json({ messageId, seq, timestamp }, 201);
    }
    const { session, refusal } = sent;
    if (!session || session.deviceStatus === "revoked") throw new AppError("unauthorized", "session ended");
    if (session.deviceStatus !== "active") throw deviceNotLinked();
    switch (refusal.kind) {
      case "notParticipant":
        throw notAParticipant();
      case "invited":
        throw notAcceptedYet();
      case "duplicate": {
        const { id: messageId, seq, createdAt: timestamp } = refusal.message;
        return c.json({ messageId, seq, timestamp }, 200);
      }
      case "staleEpoch":
        throw new AppError("conflict", "keyEpoch is not the current epoch", {
          details: [{ path: "keyEpoch", message: `current is ${refusal.current}` }],
        });
      case "badRelation":
        throw new AppError("validation_failed", "relatesTo is not valid", {
          details: [{ path: "relatesTo.messageId", message: refusal.message }],
        });
      case "rotationNeeded":
        throw new AppError("conflict", "the epoch needs rotating: commit a new epoch first", {
          details: [{ path: "epoch", message: "rotation required" }],
        });
      case "unusableAttachments":
        throw new AppError("validation_failed", "request is not valid", {
          details: [
            {
              path: "attachments",
              message: `not attachable (unknown, not yours, another conversation's, or already used): ${refusal.attachmentIds.join(", ")}`,
            },
          ],
        });
      case "overBudget":
        throw new AppError("rate_limited", "daily byte budget used up; retry after midnight UTC", {
          headers: { "Retry-After": String(refusal.retryAfterSeconds) },
        });
      case "raced":
        throw new AppError("conflict", "the conversation changed while the message was written; retry");
    }
  })
  .openapi(remove, async (c) => {
    const { messageId } = c.req.valid("param");
    const me = c.var.user;
    const notVisible = () => new AppError("forbidden", "not a message you can see");
    const { db } = shardFor(c, messageId, notVisible);
    const outcome = await deleteForEveryone(db, messageId, me.userId);
    if (outcome.kind === "notVisible") throw notVisible();
    if (outcome.kind === "notSender") throw new AppError("forbidden", "only its sender can delete a message");
    // Every time, not only the first: a DELETE retried after a failure here finishes the job.
    await deleteAttachmentsOfMessages({ db, bucket: c.env.ATTACHMENTS }, [messageId]);
    if (outcome.first) {
      const { conversationId, seq } = outcome;
      publishConversationEvent(
        c,
        { type: "messageDeleted", data: { conversationId, messageId, seq } },
        outcome.participantIds,
      );
    }
    return c.body(null, 204);
  });
