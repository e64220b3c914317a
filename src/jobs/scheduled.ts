import { deleteAbandonedAttachments, deleteUnusedAttachments } from "../attachments/lifecycle";
import { pruneDailyBytes } from "../db/daily-bytes";
import { databases } from "../db/shards";
import { sweepBacklog } from "./expiry";

/**
 * The Cron Trigger (wrangler.toml `[triggers]`): attachment cleanup, old byte counters, and the
 * backstop pass of the expiry sweep (the rooms' alarms do it within seconds; this catches what a
 * room missed, e.g. a publish that never reached it).
 */
export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const now = new Date(controller.scheduledTime);
  // Each shard on its own: one failing does not hold back the others' cleanup.
  const passes = databases(env).shards.map(async ({ db, index }) => {
    const store = { db, bucket: env.ATTACHMENTS };
    const deleted = (await deleteUnusedAttachments(store, now)) + (await deleteAbandonedAttachments(store));
    await pruneDailyBytes(db, now);
    const expired = await sweepBacklog(store, now);
    if (expired > 0) console.log(`expiry: erased ${expired} messages (shard ${index})`);
    if (deleted > 0) console.log(`cleanup: deleted ${deleted} unused attachments (shard ${index})`);
  });
  const failed = (await Promise.allSettled(passes)).filter((p) => p.status === "rejected");
  if (failed.length > 0)
    throw new AggregateError(
      failed.map((f) => (f as PromiseRejectedResult).reason),
      "a shard's scheduled pass failed",
    );
}
