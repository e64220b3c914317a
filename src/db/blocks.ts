import { and, eq } from "drizzle-orm";
import type { Database } from "../env";
import { inIds } from "./ids";
import { blocks, users } from "./schema/directory";

export interface BlockedUserRow {
  userId: number;
  username: string;
  blockedAt: string;
}

/** Blocks `blockedId` for `blockerId`; blocking twice keeps the first time. */
export async function blockUser(db: Database, blockerId: number, blockedId: number): Promise<void> {
  await db.insert(blocks).values({ blockerId, blockedId, createdAt: new Date().toISOString() }).onConflictDoNothing();
}

export async function unblockUser(db: Database, blockerId: number, blockedId: number): Promise<void> {
  await db.delete(blocks).where(and(eq(blocks.blockerId, blockerId), eq(blocks.blockedId, blockedId)));
}

/** Everyone `blockerId` has blocked, oldest block first. */
export async function listBlocked(db: Database, blockerId: number): Promise<BlockedUserRow[]> {
  return db
    .select({ userId: blocks.blockedId, username: users.username, blockedAt: blocks.createdAt })
    .from(blocks)
    .innerJoin(users, eq(users.id, blocks.blockedId))
    .where(eq(blocks.blockerId, blockerId))
    .orderBy(blocks.createdAt, blocks.blockedId);
}

/** Which of `userIds` have blocked `actorId`: they cannot be put in a conversation by the actor. */
export async function usersWhoBlocked(db: Database, userIds: number[], actorId: number): Promise<number[]> {
  if (userIds.length === 0) return [];
  const rows = await db
    .select({ userId: blocks.blockerId })
    .from(blocks)
    .where(and(inIds(blocks.blockerId, userIds), eq(blocks.blockedId, actorId)));
  return rows.map((r) => r.userId);
}
