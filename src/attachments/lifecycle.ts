import {
  abandonedAttachments,
  attachmentIdsOfUser,
  attachmentIdsUsedBy,
  attachmentKey,
  chunks,
  deleteAttachmentRows,
  unusedAttachmentsBefore,
} from "../db/attachments";
import type { Database } from "../env";

export interface AttachmentStore {
  db: Database;
  bucket: R2Bucket;
}

/** An attachment no message uses is deleted this long after its upload. */
export const UNUSED_ATTACHMENT_TTL_MS = 24 * 60 * 60 * 1000;
/** Attachments the cleanup job deletes per run: a run stays well inside one invocation's limits. */
export const CLEANUP_BATCH = 100;

/**
 * Deletes attachments: R2 objects first, then rows. If the Worker dies in between, the rows are still
 * there and the next run (or call) deletes them again; deleting a missing object is a no-op.
 */
export async function deleteAttachments(store: AttachmentStore, attachmentIds: number[]): Promise<void> {
  for (const ids of chunks(attachmentIds)) {
    await store.bucket.delete(ids.map(attachmentKey));
    await deleteAttachmentRows(store.db, ids);
  }
}

/** Deletes the attachments of these messages: call it when messages are deleted or expire. */
export async function deleteAttachmentsOfMessages(store: AttachmentStore, messageIds: number[]): Promise<number> {
  const ids = await attachmentIdsUsedBy(store.db, messageIds);
  await deleteAttachments(store, ids);
  return ids.length;
}

/**
 * Deletes every attachment of a deleted account: those its (now tombstoned) messages used and its
 * unused uploads. Call it after `deleteAccount`'s batch; what a crash leaves is already unreadable.
 */
export async function deleteAttachmentsOfUser(store: AttachmentStore, userId: number): Promise<number> {
  const ids = await attachmentIdsOfUser(store.db, userId);
  await deleteAttachments(store, ids);
  return ids.length;
}

/** One bounded pass of the cleanup job; returns how many it deleted (CLEANUP_BATCH means "maybe more"). */
export async function deleteUnusedAttachments(
  store: AttachmentStore,
  now = new Date(),
  limit = CLEANUP_BATCH,
): Promise<number> {
  const cutoff = new Date(now.getTime() - UNUSED_ATTACHMENT_TTL_MS).toISOString();
  const ids = await unusedAttachmentsBefore(store.db, cutoff, limit);
  await deleteAttachments(store, ids);
  return ids.length;
}

/** One bounded pass over what interrupted deletions left (see `abandonedAttachments`). */
export async function deleteAbandonedAttachments(store: AttachmentStore, limit = CLEANUP_BATCH): Promise<number> {
  const ids = await abandonedAttachments(store.db, limit);
  await deleteAttachments(store, ids);
  return ids.length;
}
