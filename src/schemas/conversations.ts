import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { usernameKey } from "../lib/usernames";
import {
  base64Out,
  conversationIdParam,
  id,
  pageLimit,
  signature,
  timestamp,
  username,
  wellFormed,
  wrappedKey,
} from "./common";
import { requestOf, responseOf } from "./wire";

const keyUpload = requestOf<Wire.WrappedKeyUpload>()(z.object({ deviceId: id, wrappedKey, signature }));

/** One key per device, at most one per device id. */
const keyUploads = z
  .array(keyUpload)
  .min(1, "must hold at least one key")
  .max(2560)
  .superRefine((keys, ctx) => {
    const seen = new Set<number>();
    keys.forEach((k, index) => {
      if (seen.has(k.deviceId)) {
        ctx.addIssue({ code: "custom", path: [index, "deviceId"], message: `duplicate device id: ${k.deviceId}` });
      }
      seen.add(k.deviceId);
    });
  });

export const createConversationBody = requestOf<Wire.CreateConversationRequest>()(
  z.object({
    title: wellFormed.max(200).nullish(),
    participants: z
      .array(username)
      .min(2, "must list 2 to 256 participants")
      .max(256, "must list 2 to 256 participants")
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((name, index) => {
          const key = usernameKey(name);
          if (seen.has(key)) ctx.addIssue({ code: "custom", path: [index], message: `duplicate participant: ${name}` });
          seen.add(key);
        });
      }),
    keys: keyUploads,
  }),
);

export const commitEpochBody = requestOf<Wire.CommitEpochRequest>()(z.object({ epoch: id, keys: keyUploads }));
export const participantBody = requestOf<Wire.AddParticipantRequest>()(
  z.object({ username, epoch: id, keys: keyUploads }),
);

export const epochCommittedSchema = responseOf<Wire.EpochCommitted>()(
  z.object({ epoch: z.number().int() }).openapi("EpochCommitted"),
);

export const participantParam = conversationIdParam.extend({
  username: z.string().openapi({ param: { name: "username", in: "path" } }),
});

export const participantSummarySchema = responseOf<Wire.Participant>()(
  z
    .object({
      userId: z.number().int(),
      username: z.string(),
      joinedAt: timestamp,
      role: z.enum(["admin", "member"]),
      status: z.enum(["member", "invited"]),
      lastReadSeq: z
        .number()
        .int()
        .nullable()
        .openapi({ description: "their read watermark; null unless they share read receipts" }),
    })
    .openapi("Participant"),
);

export const keySchema = responseOf<Wire.Key>()(
  z
    .object({
      epoch: z.number().int(),
      wrappedKey: base64Out,
      wrappedBy: z.object({ userId: z.number().int(), deviceId: z.number().int() }),
      signature: base64Out,
      createdAt: timestamp,
    })
    .openapi("Key"),
);

export const conversationSchema = responseOf<Wire.Conversation>()(
  z
    .object({
      conversationId: z.number().int(),
      title: z.string().nullable(),
      createdAt: timestamp,
      lastMessageId: z.number().int().nullable(),
      lastSeq: z.number().int(),
      status: z.enum(["member", "invited"]).openapi({ description: "the caller's own status" }),
      epoch: z.number().int(),
      rotationNeeded: z.boolean(),
      messageTtlSeconds: z.number().int().nullable().openapi({ description: "disappearing messages; null: never" }),
      lastReadSeq: z.number().int().openapi({ description: "the caller's read watermark" }),
      unreadCount: z.number().int().openapi({
        description: "others' messages after the caller's watermark and join that are not tombstones (exact)",
      }),
      participants: z.array(participantSummarySchema),
      key: keySchema.nullable().openapi({ description: "the current epoch's key for the caller's device" }),
    })
    .openapi("Conversation"),
);

export const conversationPageSchema = responseOf<Wire.ConversationPage>()(
  z
    .object({
      conversations: z.array(conversationSchema),
      nextCursor: z.string().nullable().openapi({ description: "opaque; null on the last page" }),
    })
    .openapi("ConversationPage"),
);

export const listQuery = z.object({
  limit: pageLimit,
  cursor: z.string().max(200).optional(),
});

export const declineBody = requestOf<Wire.DeclineRequest>()(z.object({ block: z.boolean().optional() }));

export const markReadBody = requestOf<Wire.MarkReadRequest>()(
  z.object({ seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }),
);

export const MIN_MESSAGE_TTL_SECONDS = 30;
export const MAX_MESSAGE_TTL_SECONDS = 31_536_000;

export const settingsBody = requestOf<Wire.ConversationSettingsRequest>()(
  z.object({
    messageTtlSeconds: z
      .number()
      .int()
      .min(MIN_MESSAGE_TTL_SECONDS, "must be null or 30 to 31536000")
      .max(MAX_MESSAGE_TTL_SECONDS, "must be null or 30 to 31536000")
      .nullable(),
  }),
);
