import { Hono } from "hono";
import { insertMessage } from "../db/messages";
import type { AppEnv } from "../env";
import { presentMessage } from "../lib/presenters";
import { validate } from "../lib/validator";
import { requireAuth } from "../middleware/auth";
import { messageRateLimit } from "../middleware/rate-limit";
import { publishMessage } from "../realtime/publish";
import { sendMessageBody } from "../schemas/messages";
import { notAParticipant } from "../lib/errors";

export const messageRoutes = new Hono<AppEnv>()
  .use(requireAuth)
  .post("/", messageRateLimit, validate("json", sendMessageBody), async (c) => {
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
    publishMessage(c, presentMessage(outcome.message));
    return c.json({ messageId, seq, timestamp }, 201);
  });
