import { and, eq, ne, sql } from "drizzle-orm";
import type { Database } from "../env";
import { Prebuilt, slot } from "./prebuilt";
import { onlineAmong } from "./presence";
import { devices, inboxPresence, pushSubscriptions } from "./schema/directory";

/*
 * Where a committed message goes besides its room, read from the directory after the shard's commit
 * (src/realtime/publish.ts): which participants have an inbox device connected, and which of their
 * devices could be pushed to. One statement, not two: the directory is read once per message, by
 * every shard's messages, so its share of each message is kept to a single query (which a read
 * replica may serve).
 */

const userIdsSlot = slot<string>("userIds");

const targets = new Prebuilt((db) =>
  db
    .select({ userId: inboxPresence.userId, deviceId: sql<number | null>`null`.as("device_id") })
    .from(inboxPresence)
    .where(onlineAmong(userIdsSlot, slot("now")))
    .unionAll(
      db
        .select({ userId: devices.userId, deviceId: devices.id })
        .from(devices)
        .innerJoin(pushSubscriptions, eq(pushSubscriptions.deviceId, devices.id))
        .where(
          and(
            sql`${devices.userId} in (select value from json_each(${userIdsSlot}))`,
            eq(devices.status, "active"),
            ne(devices.id, slot<number>("senderDeviceId")),
          ),
        ),
    ),
);

export interface DeliveryTargets {
  /** Participants whose inbox has a device connected. */
  onlineInboxes: Set<number>;
  /** Subscribed active devices of the participants, the sending device aside. */
  pushCandidates: { deviceId: number; userId: number }[];
}

export async function deliveryTargets(
  directoryDb: Database,
  userIds: number[],
  senderDeviceId: number,
): Promise<DeliveryTargets> {
  if (userIds.length === 0) return { onlineInboxes: new Set(), pushCandidates: [] };
  const { results } = await targets
    .bind(directoryDb, { userIds: JSON.stringify(userIds), now: Date.now(), senderDeviceId })
    .all<{ user_id: number; device_id: number | null }>();
  const onlineInboxes = new Set<number>();
  const pushCandidates: DeliveryTargets["pushCandidates"] = [];
  for (const row of results) {
    if (row.device_id === null) onlineInboxes.add(row.user_id);
    else pushCandidates.push({ deviceId: row.device_id, userId: row.user_id });
  }
  return { onlineInboxes, pushCandidates };
}
