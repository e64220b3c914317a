import { type AttachmentStore, deleteAttachmentsOfMessages } from "../attachments/lifecycle";
import { dueForErasure, eraseMessages } from "../db/message-erasure";

/**
 * The expiry sweep (disappearing messages, issue #13). Primarily the conversation room's alarm,
 * armed for the earliest `expiresAt` it publishes (seconds after expiry, per conversation); the
 * Cron Trigger runs a backstop pass over all conversations for anything a room missed. Both work
 * in bounded batches: a large backlog takes several runs, never one long one (docs/api.md).
 */

/** Messages erased per pass: one SELECT, attachment deletes, one UPDATE batch. */
export const SWEEP_BATCH = 200;
/** Passes per cron run at most (the backstop: SWEEP_BATCH × this per 5 minutes, then the next run). */
export const CRON_SWEEP_PASSES = 5;

/**
 * One pass: erases up to `limit` expired messages (their attachments first, so a crash in between
 * leaves messages that the next pass finds again, never orphaned attachments). Returns how many.
 */
export async function erasePass(
  store: AttachmentStore,
  options: { now: Date; limit?: number; conversationId?: number },
): Promise<number> {
  const limit = options.limit ?? SWEEP_BATCH;
  const ids = await dueForErasure(store.db, {
    now: options.now.toISOString(),
    limit,
    ...(options.conversationId === undefined ? {} : { conversationId: options.conversationId }),
  });
  if (ids.length === 0) return 0;
  await deleteAttachmentsOfMessages(store, ids);
  await eraseMessages(store.db, ids);
  return ids.length;
}

/** The cron's backstop: passes until one comes back short, at most `passes` of them. */
export async function sweepBacklog(
  store: AttachmentStore,
  now: Date,
  passes = CRON_SWEEP_PASSES,
  limit = SWEEP_BATCH,
): Promise<number> {
  let total = 0;
  for (let i = 0; i < passes; i++) {
    const erased = await erasePass(store, { now, limit });
    total += erased;
    if (erased < limit) break;
  }
  return total;
}
