import { createRoute } from "@hono/zod-openapi";
import { insertMessage } from "../db/messages";
import { notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { presentMessage } from "../lib/presenters";
import { requireAuth } from "../middleware/auth";
import { messageRateLimit } from "../middleware/rate-limit";
import { publishMessage } from "../realtime/publish";
import { messageAckSchema, sendMessageBody } from "../schemas/messages";

const send = createRoute({
  method: "post",
  path: "/",
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

export const messageRoutes = createRouter().openapi(send, async (c) => {
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
