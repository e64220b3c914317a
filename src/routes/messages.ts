import { createRoute, z } from "@hono/zod-openapi";
import { callerIsParticipant } from "../db/conversations";
import { insertMessage, listMessages } from "../db/messages";
import { notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { requireAuth } from "../middleware/auth";
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
  middleware: [requireAuth, messageRateLimit],
  request: { body: jsonBody(sendMessageBody) },
  responses: {
    201: json(messageAckSchema, "Committed; every connected participant receives `newMessage`"),
    200: json(messageAckSchema, "An idempotent retry: the first call's answer, nothing stored or broadcast"),
    ...errors(400, 401, 403, 413, 415, 422, 429),
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
    if (!(await callerIsParticipant(c.var.db, id, c.var.user.userId))) throw notAParticipant();
    const page = await listMessages(c.var.db, id, c.req.valid("query"));
    return c.json(page.map(presentMessage), 200);
  })
  .openapi(send, async (c) => {
    const body = c.req.valid("json");
    const me = c.var.user;
    const outcome = await insertMessage(
      c.var.db,
      {
        conversationId: body.conversationId,
        senderId: me.userId,
        nonce: body.nonce,
        ciphertext: body.ciphertext,
        authTag: body.authTag,
        associatedData: body.associatedData ?? null,
        clientMessageId: body.clientMessageId ?? null,
      },
      me,
    );
    if (outcome.kind === "forbidden") throw notAParticipant();
    const { id: messageId, seq, createdAt: timestamp } = outcome.message;
    if (outcome.kind === "duplicate") return c.json({ messageId, seq, timestamp }, 200);
    publishMessage(c, presentMessage(outcome.message), outcome.inboxRecipients);
    return c.json({ messageId, seq, timestamp }, 201);
  });
