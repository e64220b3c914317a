import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { idString } from "./common";
import { responseOf } from "./wire";

export const uploadQuery = z.object({
  conversationId: idString.openapi({ param: { name: "conversationId", in: "query" }, type: "string", example: "7" }),
});

export const attachmentIdParam = z.object({
  attachmentId: idString.openapi({ param: { name: "attachmentId", in: "path" }, type: "string", example: "12" }),
});

export const attachmentUploadedSchema = responseOf<Wire.AttachmentUploaded>()(
  z.object({ attachmentId: z.number().int(), size: z.number().int() }).openapi("AttachmentUploaded"),
);

export const binary = z.string().openapi({ format: "binary", description: "opaque encrypted bytes" });
