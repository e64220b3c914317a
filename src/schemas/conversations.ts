import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { base64Out, conversationIdParam, encryptedKey, timestamp, username, wellFormed } from "./common";
import { requestOf, responseOf } from "./wire";

export const participantBody = requestOf<Wire.AddParticipantRequest>()(z.object({ username, encryptedKey }));

export const createConversationBody = requestOf<Wire.CreateConversationRequest>()(
  z.object({
    title: wellFormed.max(200).nullish(),
    participants: z
      .array(participantBody)
      .min(2, "must list 2 to 256 participants")
      .max(256, "must list 2 to 256 participants")
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((p, index) => {
          const key = p.username.toLowerCase();
          if (seen.has(key)) {
            ctx.addIssue({
              code: "custom",
              path: [index, "username"],
              message: `duplicate participant: ${p.username}`,
            });
          }
          seen.add(key);
        });
      }),
  }),
);

export const participantParam = conversationIdParam.extend({
  username: z.string().openapi({ param: { name: "username", in: "path" } }),
});

export const participantSummarySchema = responseOf<Wire.Participant>()(
  z.object({ userId: z.number().int(), username: z.string(), joinedAt: timestamp }).openapi("Participant"),
);

export const conversationSchema = responseOf<Wire.Conversation>()(
  z
    .object({
      conversationId: z.number().int(),
      title: z.string().nullable(),
      createdAt: timestamp,
      lastMessageId: z.number().int().nullable(),
      participants: z.array(participantSummarySchema),
      encryptedKey: base64Out.openapi({ description: "the conversation key wrapped for the caller" }),
    })
    .openapi("Conversation"),
);
