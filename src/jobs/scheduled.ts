import { deleteAbandonedAttachments, deleteUnusedAttachments } from "../attachments/lifecycle";
import { createDb } from "../db/client";
import { pruneDailyBytes } from "../db/daily-bytes";
import { sweepBacklog } from "./expiry";

/**
 * The Cron Trigger (wrangler.toml `[triggers]`): attachment cleanup, old byte counters, and the
 * backstop pass of the expiry sweep (the rooms' alarms do it within seconds; this catches what a
 * room missed, e.g. a publish that never reached it).
 */
export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const db = createDb(env.DB);
  const now = new Date(controller.scheduledTime);
  const store = { db, bucket: env.ATTACHMENTS };
  const deleted = (await deleteUnusedAttachments(store, now)) + (await deleteAbandonedAttachments(store));
  await pruneDailyBytes(db, now);
  const expired = await sweepBacklog({ db, bucket: env.ATTACHMENTS }, now);
  if (expired > 0) console.log(`expiry: erased ${expired} messages`);
  if (deleted > 0) console.log(`cleanup: deleted ${deleted} unused attachments`);
}
