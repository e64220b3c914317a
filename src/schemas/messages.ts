import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { base64Bytes, base64Out, id, idString, pageLimit, signature, timestamp, wellFormed } from "./common";
import { requestOf, responseOf } from "./wire";

export const MAX_CIPHERTEXT_BYTES = 64 * 1024;
/** Attachments one message may carry. */
export const MAX_ATTACHMENTS = 10;

const relatesToSchema = z
  .object({ messageId: id, kind: z.enum(["reply", "edit", "reaction"]) })
  .openapi("RelatesTo", { description: "a reply, an edit (of one's own message) or a reaction" });

export const sendMessageBody = requestOf<Wire.SendMessageRequest>()(
  z.object({
    conversationId: id,
    keyEpoch: id,
    nonce: base64Bytes(12, 24),
    ciphertext: base64Bytes(1, MAX_CIPHERTEXT_BYTES),
    authTag: base64Bytes(16, 16),
    associatedData: base64Bytes(0, 1024).nullish(),
    signature,
    clientMessageId: wellFormed.min(1).max(64).optional(),
    attachments: z
      .array(id)
      .max(MAX_ATTACHMENTS, `at most ${MAX_ATTACHMENTS} attachments`)
      .refine((ids) => new Set(ids).size === ids.length, "must not repeat an attachment id")
      .optional(),
    relatesTo: relatesToSchema.nullish(),
  }),
);

export const historyQuery = z
  .object({
    limit: pageLimit,
    before: idString.optional(),
    after: idString.optional(),
  })
  .refine((q) => q.before === undefined || q.after === undefined, {
    message: "use either before or after, not both",
    path: ["after"],
  });

export type HistoryQuery = z.output<typeof historyQuery>;

export const messageAckSchema = responseOf<Wire.MessageAck>()(
  z.object({ messageId: z.number().int(), seq: z.number().int(), timestamp }).openapi("MessageAck"),
);

export const messageSchema = responseOf<Wire.MessageResponse>()(
  z
    .object({
      messageId: z.number().int(),
      seq: z.number().int(),
      conversationId: z.number().int(),
      senderId: z.number().int(),
      senderUsername: z.string().nullable(),
      senderDeviceId: z.number().int(),
      keyEpoch: z.number().int(),
      timestamp,
      nonce: base64Out.nullable(),
      ciphertext: base64Out.nullable(),
      authTag: base64Out.nullable(),
      associatedData: base64Out.nullable(),
      signature: base64Out.nullable(),
      clientMessageId: z.string().nullable(),
      attachments: z.array(z.number().int()).nullable(),
      relatesTo: relatesToSchema.nullable(),
      expiresAt: timestamp.nullable(),
      deleted: z.boolean(),
    })
    .openapi("MessageResponse"),
);

export const messageIdParam = z.object({
  messageId: idString.openapi({ param: { name: "messageId", in: "path" }, type: "string", example: "43" }),
});
