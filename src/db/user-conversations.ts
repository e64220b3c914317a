import { eq, sql } from "drizzle-orm";
import { type ConversationView, type ListPosition, listConversationsForUser } from "./conversations";
import { conversationCounts } from "./membership";
import { type AccountSnapshot, applySnapshot } from "./mirror";
import { membershipsOf, peersOf } from "./participation";
import { userShards } from "./schema/directory";
import type { Databases, Shard } from "./shards";

/*
 * A user's conversations across shards. The directory's `user_shards` says which shards to ask (a
 * superset: written before the shard write, kept after a leave); the shards' participant rows are
 * the truth, so every answer here is read from them.
 */

/** The shards that may hold a conversation of `userId`. */
export async function shardsOfUser(dbs: Databases, userId: number): Promise<Shard[]> {
  const rows = await dbs.directory
    .select({ shard: userShards.shard })
    .from(userShards)
    .where(eq(userShards.userId, userId));
  return rows.map((r) => dbs.shardAt(r.shard)).filter((s): s is Shard => s !== undefined);
}

/**
 * Records that `userIds` take part in a conversation of `shard`, before the shard write that puts
 * them there; answers those for whom the shard is new (their account facts must be copied to it).
 */
export async function recordUserShard(dbs: Databases, userIds: number[], shard: number): Promise<number[]> {
  if (userIds.length === 0) return [];
  const ids = JSON.stringify([...new Set(userIds)]);
  const rows = await dbs.directory
    .insert(userShards)
    .select(
      dbs.directory
        .select({ userId: sql<number>`j.value`.as("user_id"), shard: sql<number>`${shard}`.as("shard") })
        .from(sql`json_each(${ids}) j`)
        .where(sql`1`),
    )
    .onConflictDoNothing()
    .returning({ userId: userShards.userId });
  return rows.map((r) => r.userId);
}

/**
 * Before the users of `accounts` (a snapshot the caller read to validate the join) join a
 * conversation in `shard`: the index learns the shard, then the shard gets their devices, sessions
 * and settings (the coverage check of the join reads them there). A snapshot read earlier cannot
 * undo a revocation (copies only move forward, src/db/mirror.ts).
 */
export async function admitToShard(dbs: Databases, shard: Shard, accounts: AccountSnapshot): Promise<void> {
  await recordUserShard(dbs, accounts.userIds, shard.index);
  await applySnapshot(shard.db, accounts);
}

/** The shard a new conversation goes to: any of SHARD_PLACEMENT, at random (they fill evenly). */
export function placeConversation(dbs: Databases, placement: readonly number[]): Shard {
  const index = placement[Math.floor(Math.random() * placement.length)]!;
  return dbs.shardAt(index)!;
}

/** Every conversation of `userId` with its current epoch, from all of their shards. */
export async function membershipsAcross(dbs: Databases, userId: number) {
  const shards = await shardsOfUser(dbs, userId);
  return (await Promise.all(shards.map((s) => membershipsOf(s.db, userId)))).flat();
}

/** Everyone sharing a conversation with `userId`, from all of their shards. */
export async function peersAcross(dbs: Databases, userId: number): Promise<number[]> {
  const shards = await shardsOfUser(dbs, userId);
  return [...new Set((await Promise.all(shards.map((s) => peersOf(s.db, userId)))).flat())];
}

/** How many conversations each of `userIds` is in, summed over every shard. */
export async function conversationCountsAcross(dbs: Databases, userIds: number[]): Promise<Map<number, number>> {
  const perShard = await Promise.all(dbs.shards.map((s) => conversationCounts(s.db, userIds)));
  const total = new Map<number, number>();
  for (const counts of perShard) for (const [id, n] of counts) total.set(id, (total.get(id) ?? 0) + n);
  return total;
}

const newerFirst = (a: ConversationView, b: ConversationView) =>
  a.lastActivityAt === b.lastActivityAt ? b.id - a.id : a.lastActivityAt < b.lastActivityAt ? 1 : -1;

/**
 * A page of the user's conversations across shards, most recent activity first: each shard gives
 * its own first `limit` after the position (one batch each, in parallel), and the page is the first
 * `limit` of their merge, so no conversation is skipped or repeated between pages.
 */
export async function listConversationsAcross(
  dbs: Databases,
  reader: { userId: number; deviceId: number },
  page: { limit: number; after?: ListPosition },
): Promise<{ conversations: ConversationView[]; next: ListPosition | null }> {
  const shards = await shardsOfUser(dbs, reader.userId);
  const pages = await Promise.all(shards.map((s) => listConversationsForUser(s.db, reader, page)));
  const merged = pages.flatMap((p) => p.conversations).sort(newerFirst);
  const more = merged.length > page.limit || pages.some((p) => p.next !== null);
  const views = merged.slice(0, page.limit);
  const last = views.at(-1);
  return { conversations: views, next: more && last ? { activityAt: last.lastActivityAt, id: last.id } : null };
}
