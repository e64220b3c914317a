import { deleteAbandonedAttachments, deleteUnusedAttachments } from "../attachments/lifecycle";
import { createDb } from "../db/client";
import { pruneDailyBytes } from "../db/daily-bytes";

/** The Cron Trigger (wrangler.toml `[triggers]`): attachment cleanup and old byte counters. */
export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const db = createDb(env.DB);
  const now = new Date(controller.scheduledTime);
  const store = { db, bucket: env.ATTACHMENTS };
  const deleted = (await deleteUnusedAttachments(store, now)) + (await deleteAbandonedAttachments(store));
  await pruneDailyBytes(db, now);
  if (deleted > 0) console.log(`cleanup: deleted ${deleted} unused attachments`);
}
