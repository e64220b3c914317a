/**
 * Attachments (issue #14): the encrypted file travels as the raw body of `POST /attachments`
 * (`application/octet-stream`) and comes back byte for byte from `GET /attachments/{attachmentId}`.
 * The server never sees a key, a file name or a media type: those live inside the client's ciphertext.
 */

/** `POST /attachments?conversationId=<id>` → 201. */
export interface AttachmentUploaded {
  attachmentId: number;
  /** Bytes stored (the body's length). */
  size: number;
}
