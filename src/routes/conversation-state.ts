import { createRoute } from "@hono/zod-openapi";
import { findConversationForUser } from "../db/conversations";
import { invitation, setMessageTtl } from "../db/membership";
import { markRead } from "../db/read-state";
import { AppError, notAcceptedYet, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json, jsonBody } from "../lib/openapi";
import { shardFor } from "../lib/shard";
import { requireAuth } from "../middleware/auth";
import { presentConversation } from "../presenters";
import { publishConversationEvent } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import { conversationSchema, markReadBody, settingsBody } from "../schemas/conversations";

const tags = ["conversations"];

const read = createRoute({
  operationId: "markConversationRead",
  method: "post",
  path: "/{id}/read",
  tags,
  summary: "Raise the caller's read watermark to `seq` (a lower value changes nothing); invited participants too",
  security: bearer,
  middleware: [requireAuth],
  request: { params: conversationIdParam, body: jsonBody(markReadBody) },
  responses: {
    204: {
      description: "Read; `read` goes to the participants if the caller shares receipts, else to their own devices",
    },
    ...errors(400, 401, 403, 413, 415, 422),
  },
});

const settings = createRoute({
  operationId: "updateConversationSettings",
  method: "put",
  path: "/{id}/settings",
  tags,
  summary: "Disappearing messages: the TTL of messages sent from now on (any member)",
  security: bearer,
  middleware: [requireAuth],
  request: { params: conversationIdParam, body: jsonBody(settingsBody) },
  responses: {
    200: json(conversationSchema, "The conversation; members get `settingsChanged`"),
    ...errors(400, 401, 403, 413, 415, 422),
  },
});

/** Per-conversation state that is not membership: read watermarks and settings (issue #13). */
export const conversationStateRoutes = createRouter()
  .openapi(read, async (c) => {
    const { id } = c.req.valid("param");
    const { seq } = c.req.valid("json");
    const me = c.var.user;
    const outcome = await markRead(shardFor(c, id).db, id, me.userId, seq);
    if (outcome.kind === "notParticipant") throw notAParticipant();
    if (outcome.kind === "beyondLastSeq") {
      throw new AppError("validation_failed", "seq is beyond the conversation's last message", {
        details: [{ path: "seq", message: `lastSeq is ${outcome.lastSeq}` }],
      });
    }
    if (outcome.moved) {
      // Without receipts only the reader's own devices hear of it (to clear their badges).
      const audience = outcome.shareReceipts ? outcome.participantIds : [me.userId];
      publishConversationEvent(c, { type: "read", data: { conversationId: id, userId: me.userId, seq } }, audience, {
        onlyUserId: outcome.shareReceipts ? undefined : me.userId,
      });
    }
    return c.body(null, 204);
  })
  .openapi(settings, async (c) => {
    const { id } = c.req.valid("param");
    const { messageTtlSeconds } = c.req.valid("json");
    const me = c.var.user;
    const { db } = shardFor(c, id);
    if (!(await setMessageTtl(db, id, me.userId, messageTtlSeconds))) {
      const mine = await invitation(db, id, me.userId);
      throw mine ? notAcceptedYet() : notAParticipant();
    }
    const conversation = await findConversationForUser(db, id, me);
    if (!conversation) throw notAParticipant();
    publishConversationEvent(
      c,
      { type: "settingsChanged", data: { conversationId: id, messageTtlSeconds, by: me.userId } },
      conversation.participants.map((p) => p.userId),
    );
    return c.json(presentConversation(conversation), 200);
  });
