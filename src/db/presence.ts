import { and, eq, gt, sql } from "drizzle-orm";
import type { Database } from "../env";
import { lastSeqsOfUser } from "./participation";
import { Prebuilt, slot } from "./prebuilt";
import { inboxPresence } from "./schema/directory";
import type { Databases } from "./shards";
import { shardsOfUser } from "./user-conversations";

/** How long an inbox's "online" lasts without renewal; the inbox renews it every PRESENCE_RENEW_MS. */
export const PRESENCE_LEASE_MS = 3 * 60_000;
export const PRESENCE_RENEW_MS = 60_000;

function presenceUpsert(db: Database, userId: number, online: boolean, version: number, now: number) {
  const expiresAt = online ? now + PRESENCE_LEASE_MS : now;
  return db
    .insert(inboxPresence)
    .values({ userId, online, version, expiresAt })
    .onConflictDoUpdate({
      target: inboxPresence.userId,
      set: { online, version, expiresAt },
      setWhere: sql`${inboxPresence.version} < ${version}`,
    });
}

/**
 * Records whether `userId` has an inbox socket open (online for PRESENCE_LEASE_MS from `now`); a
 * write with an older `version` loses.
 */
export async function setInboxPresence(
  db: Database,
  userId: number,
  online: boolean,
  version: number,
  now = Date.now(),
): Promise<void> {
  await presenceUpsert(db, userId, online, version, now);
}

/**
 * Marks `userId` online, then reads the last seq of each of their conversations from their shards.
 * A message committed after that read reads this presence after its commit (src/routes/messages.ts),
 * so it is forwarded to the inbox: either way no message falls between the baseline and the forwards.
 */
export async function goOnline(
  dbs: Databases,
  userId: number,
  version: number,
): Promise<{ conversationId: number; lastSeq: number; joinedAt: string; status: "member" | "invited" }[]> {
  await presenceUpsert(dbs.directory, userId, true, version, Date.now());
  const shards = await shardsOfUser(dbs, userId);
  return (await Promise.all(shards.map((s) => lastSeqsOfUser(s.db, userId)))).flat();
}

/**
 * Which of `userIds` have an inbox device connected now: events go only to those inboxes (an inbox
 * with no device has nobody to tell, and its next device catches up over REST).
 */
export async function onlineUsers(db: Database, userIds: number[]): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const { results } = await onlineUsersStatement
    .bind(db, { userIds: JSON.stringify(userIds), now: Date.now() })
    .all<{ user_id: number }>();
  return new Set(results.map((r) => r.user_id));
}

/** SQL condition: an inbox presence row of one of `userIdsJson` (a JSON array) that is online at `now` (ms). */
export const onlineAmong = (userIdsJson: string, now: number) =>
  and(
    sql`${inboxPresence.userId} in (select value from json_each(${userIdsJson}))`,
    eq(inboxPresence.online, true),
    gt(inboxPresence.expiresAt, now),
  );

// Read for every event sent to inboxes (src/realtime/publish.ts): prebuilt (src/db/prebuilt.ts).
const onlineUsersStatement = new Prebuilt((db) =>
  db
    .select({ userId: inboxPresence.userId })
    .from(inboxPresence)
    .where(onlineAmong(slot("userIds"), slot("now"))),
);
