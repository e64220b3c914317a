import { and, eq, gt, sql } from "drizzle-orm";
import type { Database } from "../env";
import { inIds } from "./ids";
import { conversations, inboxPresence, participants } from "./schema";

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
 * Marks `userId` online and reads the last seq of each of their conversations, in one batch: every
 * message committed after it is forwarded to the inbox and has a seq above the one read here.
 */
export async function goOnline(
  db: Database,
  userId: number,
  version: number,
): Promise<{ conversationId: number; lastSeq: number; joinedAt: string; status: "member" | "invited" }[]> {
  const [, rows] = await db.batch([
    presenceUpsert(db, userId, true, version, Date.now()),
    db
      .select({
        conversationId: participants.conversationId,
        lastSeq: conversations.lastSeq,
        joinedAt: participants.joinedAt,
        status: participants.status,
      })
      .from(participants)
      .innerJoin(conversations, eq(conversations.id, participants.conversationId))
      .where(eq(participants.userId, userId)),
  ]);
  return rows;
}

/** The participants of a conversation whose inbox has a device connected: where to forward its messages. */
export function onlineInboxesQuery(db: Database, conversationId: number) {
  return db
    .select({ userId: participants.userId })
    .from(participants)
    .innerJoin(inboxPresence, eq(inboxPresence.userId, participants.userId))
    .where(
      and(
        eq(participants.conversationId, conversationId),
        eq(inboxPresence.online, true),
        gt(inboxPresence.expiresAt, Date.now()),
      ),
    );
}

export async function onlineInboxes(db: Database, conversationId: number): Promise<number[]> {
  return (await onlineInboxesQuery(db, conversationId)).map((r) => r.userId);
}

/**
 * Which of `userIds` have an inbox device connected now: events go only to those inboxes (an inbox
 * with no device has nobody to tell, and its next device catches up over REST).
 */
export async function onlineUsers(db: Database, userIds: number[]): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .select({ userId: inboxPresence.userId })
    .from(inboxPresence)
    .where(
      and(
        inIds(inboxPresence.userId, userIds),
        eq(inboxPresence.online, true),
        gt(inboxPresence.expiresAt, Date.now()),
      ),
    );
  return new Set(rows.map((r) => r.userId));
}
