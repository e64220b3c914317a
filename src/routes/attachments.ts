import { createRoute } from "@hono/zod-openapi";
import { chargeOrRefuse } from "../attachments/budget";
import { streamToBucket, UploadTooLarge, UploadTruncated } from "../attachments/storage";
import { attachmentConfig } from "../config";
import {
  attachmentKey,
  createPendingAttachment,
  deleteAttachmentRows,
  markAttachmentStored,
  readableAttachmentSize,
} from "../db/attachments";
import { callerIsParticipant } from "../db/participation";
import { AppError, notAParticipant } from "../lib/errors";
import { bearer, createRouter, errors, json } from "../lib/openapi";
import { shardFor } from "../lib/shard";
import { requireAuth } from "../middleware/auth";
import { attachmentIdParam, attachmentUploadedSchema, binary, uploadQuery } from "../schemas/attachments";

const octetStream = { "application/octet-stream": { schema: binary } };

const upload = createRoute({
  operationId: "uploadAttachment",
  method: "post",
  path: "/attachments",
  tags: ["attachments"],
  summary: "Upload an encrypted attachment (raw body, at most MAX_ATTACHMENT_BYTES)",
  description:
    "The body is streamed to object storage as it arrives. It counts against the daily byte budget (by `Content-Length`). " +
    "Only its uploader can read it until a message uses it; unused after 24 hours, it is deleted.",
  security: bearer,
  middleware: [requireAuth],
  request: { query: uploadQuery, body: { required: true, content: octetStream } },
  responses: {
    201: json(attachmentUploadedSchema, "Stored"),
    ...errors(400, 401, 403, 413, 415, 422, 429),
    411: { description: "No `Content-Length`", content: errors()[500]!.content },
  },
});

const download = createRoute({
  operationId: "downloadAttachment",
  method: "get",
  path: "/attachments/{attachmentId}",
  tags: ["attachments"],
  summary: "Download an attachment's exact bytes",
  description:
    "To a current participant who may see the message that uses it (joined at or before it), or only to its " +
    "uploader while no message does. " +
    "403 otherwise, whether or not it exists.",
  security: bearer,
  middleware: [requireAuth],
  request: { params: attachmentIdParam },
  responses: {
    200: { description: "The bytes, streamed, with `Content-Length`", content: octetStream },
    ...errors(401, 403, 404, 422),
  },
});

/** `Content-Length` as a number, or null when absent or not a plain decimal. */
function declaredLength(header: string | undefined): number | null {
  return header !== undefined && /^[0-9]{1,15}$/.test(header) ? Number(header) : null;
}

/** Encrypted attachments in R2 (issue #14): upload and download. */
export const attachmentRoutes = createRouter()
  .openapi(upload, async (c) => {
    const { conversationId } = c.req.valid("query");
    const me = c.var.user;
    const settings = attachmentConfig(c.env);
    // "Participants who may post": requireAuth has checked the device is active (a pending one: 403),
    // this that the caller takes part. (Should participants gain a status, e.g. invited, check it here.)
    const shard = shardFor(c, conversationId);
    if (!(await callerIsParticipant(shard.db, conversationId, me.userId))) throw notAParticipant();
    const mediaType = c.req.header("Content-Type")?.split(";")[0]?.trim().toLowerCase();
    if (mediaType !== "application/octet-stream") {
      throw new AppError("unsupported_media_type", "the body must be application/octet-stream");
    }
    const length = declaredLength(c.req.header("Content-Length"));
    if (length === null) throw new AppError("bad_request", "Content-Length is required", { status: 411 });
    if (length === 0 || !c.req.raw.body) {
      throw new AppError("validation_failed", "request is not valid", {
        details: [{ path: "body", message: "must not be empty" }],
      });
    }
    const tooLarge = () =>
      new AppError("payload_too_large", `an attachment is at most ${settings.maxAttachmentBytes} bytes`);
    if (length > settings.maxAttachmentBytes) throw tooLarge();
    await chargeOrRefuse(shard.db, me.userId, length, settings.dailyBytesPerUser);

    const attachmentId = await createPendingAttachment(shard.db, shard.index, {
      uploaderId: me.userId,
      conversationId,
    });
    try {
      await streamToBucket(c.env.ATTACHMENTS, attachmentKey(attachmentId), c.req.raw.body, length);
    } catch (err) {
      await c.env.ATTACHMENTS.delete(attachmentKey(attachmentId));
      await deleteAttachmentRows(shard.db, [attachmentId]);
      if (err instanceof UploadTooLarge) throw tooLarge();
      if (err instanceof UploadTruncated) throw new AppError("bad_request", "the body is shorter than Content-Length");
      throw err;
    }
    await markAttachmentStored(shard.db, attachmentId, length);
    return c.json({ attachmentId, size: length }, 201);
  })
  .openapi(download, async (c) => {
    const { attachmentId } = c.req.valid("param");
    // One answer for unknown, unfinished and not-yours: nobody learns which attachments exist.
    const refuse = () => new AppError("forbidden", "not allowed to read this attachment");
    const size = await readableAttachmentSize(shardFor(c, attachmentId, refuse).db, attachmentId, c.var.user.userId);
    if (size === undefined) throw refuse();
    const object = await c.env.ATTACHMENTS.get(attachmentKey(attachmentId));
    if (!object) throw new AppError("not_found", "the attachment's bytes are gone");
    return c.body(object.body, 200, {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(object.size),
      "Content-Disposition": "attachment",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    });
  });
