import { and, eq, inArray, isNull, lte, or } from "drizzle-orm";
import type { Database } from "../env";
import { chunks } from "./attachments";
import { pushSubscriptions } from "./schema/directory";

export interface StoredSubscription {
  deviceId: number;
  endpoint: string;
  p256dh: Uint8Array;
  auth: Uint8Array;
}

const columns = {
  deviceId: pushSubscriptions.deviceId,
  endpoint: pushSubscriptions.endpoint,
  p256dh: pushSubscriptions.p256dh,
  auth: pushSubscriptions.auth,
};

/** Sets the device's subscription (a browser that re-subscribes replaces it). */
export async function upsertPushSubscription(db: Database, subscription: StoredSubscription): Promise<void> {
  const { deviceId: _deviceId, ...fields } = subscription;
  await db
    .insert(pushSubscriptions)
    .values({ ...subscription, createdAt: new Date().toISOString() })
    .onConflictDoUpdate({
      target: pushSubscriptions.deviceId,
      set: { ...fields, createdAt: new Date().toISOString(), lastPushAt: null },
    });
}

/** Deletes the device's subscription; with `endpoint`, only if it is still that one (a 404/410 answer). */
export async function deletePushSubscription(db: Database, deviceId: number, endpoint?: string): Promise<boolean> {
  const rows = await db
    .delete(pushSubscriptions)
    .where(
      and(eq(pushSubscriptions.deviceId, deviceId), endpoint ? eq(pushSubscriptions.endpoint, endpoint) : undefined),
    )
    .returning({ deviceId: pushSubscriptions.deviceId });
  return rows.length > 0;
}

/** The subscriptions of those of `deviceIds` that have one. */
export async function listPushSubscriptions(db: Database, deviceIds: number[]): Promise<StoredSubscription[]> {
  const found: StoredSubscription[] = [];
  for (const ids of chunks([...new Set(deviceIds)])) {
    found.push(...(await db.select(columns).from(pushSubscriptions).where(inArray(pushSubscriptions.deviceId, ids))));
  }
  return found;
}

/**
 * Takes the device's push slot: returns its subscription and stamps `last_push_at = now`, unless it
 * was pushed to less than `windowMs` ago (then undefined). One UPDATE, so two consumers racing for
 * the same device cannot both win. Without `windowMs` the slot is taken unconditionally (a retry of
 * a push that already took it).
 */
export async function takePushSlot(
  db: Database,
  deviceId: number,
  now: Date,
  windowMs?: number,
): Promise<StoredSubscription | undefined> {
  const free =
    windowMs === undefined
      ? undefined
      : or(
          isNull(pushSubscriptions.lastPushAt),
          lte(pushSubscriptions.lastPushAt, new Date(now.getTime() - windowMs).toISOString()),
        );
  return db
    .update(pushSubscriptions)
    .set({ lastPushAt: now.toISOString() })
    .where(and(eq(pushSubscriptions.deviceId, deviceId), free))
    .returning(columns)
    .get();
}
