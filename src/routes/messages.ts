import { createRoute, z } from "@hono/zod-openapi";
import { participation } from "../db/conversations";
import { insertMessage, listMessages, whyRefused } from "../db/messages";
import { liveSession } from "../db/sessions";
import { AppError, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { deviceNotLinked, requireAuth, requireToken } from "../middleware/auth";
import { messageRateLimit } from "../middleware/rate-limit";
import { presentMessage } from "../presenters";
import { publishMessage } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import { historyQuery, messageAckSchema, messageSchema, sendMessageBody } from "../schemas/messages";

const send = createRoute({
  operationId: "sendMessage",
  method: "post",
  path: "/messages",
  tags: ["messages"],
  summary: "Send a message (ciphertext only); idempotent by clientMessageId",
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

/** Messages: sending (`/messages`) and a conversation's history (`/conversations/{id}/messages`). */
export const messageRoutes = createRouter()
  .openapi(history, async (c) => {
    const { id } = c.req.valid("param");
    const joined = await participation(c.var.db, id, c.var.user.userId);
    if (!joined) throw notAParticipant();
    const page = await listMessages(c.var.db, id, c.req.valid("query"), joined.joinedSeq);
    return c.json(page.map(presentMessage), 200);
  })
  .openapi(send, async (c) => {
    const body = c.req.valid("json");
    const me = c.var.user;
    const message = {
      conversationId: body.conversationId,
      keyEpoch: body.keyEpoch,
      nonce: body.nonce,
      ciphertext: body.ciphertext,
      authTag: body.authTag,
      associatedData: body.associatedData ?? null,
      signature: body.signature,
      clientMessageId: body.clientMessageId ?? null,
    };
    const outcome = await insertMessage(c.var.db, message, me);
    if (outcome.kind === "created") {
      const { id: messageId, seq, createdAt: timestamp } = outcome.message;
      publishMessage(c, presentMessage(outcome.message), outcome.inboxRecipients);
      return c.json({ messageId, seq, timestamp }, 201);
    }
    // Refused: only now find out why (the commit path itself never paid for these reads).
    const [session, refusal] = await Promise.all([liveSession(c.var.db, me), whyRefused(c.var.db, message, me.userId)]);
    if (!session || session.deviceStatus === "revoked") throw new AppError("unauthorized", "session ended");
    if (session.deviceStatus !== "active") throw deviceNotLinked();
    switch (refusal.kind) {
      case "notParticipant":
        throw notAParticipant();
      case "duplicate": {
        const { id: messageId, seq, createdAt: timestamp } = refusal.message;
        return c.json({ messageId, seq, timestamp }, 200);
      }
      case "staleEpoch":
        throw new AppError("conflict", "keyEpoch is not the current epoch", {
          details: [{ path: "keyEpoch", message: `current is ${refusal.current}` }],
        });
      case "rotationNeeded":
        throw new AppError("conflict", "the epoch needs rotating: commit a new epoch first", {
          details: [{ path: "epoch", message: "rotation required" }],
        });
    }
  });
