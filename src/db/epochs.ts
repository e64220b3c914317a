import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import {
  type ConversationView,
  conversationViewStatements,
  isMember,
  isParticipant,
  type Member,
  viewFrom,
} from "./conversations";
import { coverageMismatch } from "./coverage";
import { insertKeysStatements, type WrappedKey } from "./keys";
import { conversations, epochs, participants } from "./schema/shard";

export interface EpochCommit {
  conversationId: number;
  /** The current epoch + 1. */
  epoch: number;
  by: { userId: number; deviceId: number };
  keys: WrappedKey[];
  /** Adding a participant is itself an epoch commit. */
  newcomer?: Member & { status: "member" | "invited" };
}

export type CommitOutcome = { committed: false } | { committed: true; view: ConversationView | undefined };

/**
 * Commits an epoch in one atomic batch; `false` if another commit got there first (or the caller
 * is no longer a participant, or the newcomer already is one).
 *
 * Why it cannot race: the epoch row is inserted only while the conversation is at `epoch - 1`,
 * and every later statement runs only if *this* commit's row exists (its random `commitId`). D1
 * runs a batch as one transaction and writes one at a time, so of two commits of the same epoch
 * the second finds the epoch already moved on and changes nothing. The final statement sets
 * `rotationNeeded` from the exact coverage at commit time, so a device added or revoked between
 * the caller's check and this batch is not missed.
 */
export async function commitEpoch(db: Database, commit: EpochCommit): Promise<boolean> {
  return (await commitEpochAndRead(db, commit)).committed;
}

/**
 * `commitEpoch`, reading the conversation as the committer's device sees it afterwards in the same
 * batch: the answer never depends on a read that could fail after the commit.
 */
export async function commitEpochAndRead(db: Database, commit: EpochCommit): Promise<CommitOutcome> {
  const now = new Date().toISOString();
  const commitId = crypto.randomUUID();
  const { conversationId, epoch, by, newcomer } = commit;
  const won = sql`exists (select 1 from ${epochs} where ${epochs.conversationId} = ${conversationId} and ${epochs.epoch} = ${epoch} and ${epochs.commitId} = ${commitId})`;
  const view = conversationViewStatements(db, conversationId, by);
  const results = await db.batch([
    db
      .insert(epochs)
      .select(
        db
          .select({
            conversationId: conversations.id,
            epoch: sql<number>`${epoch}`.as("epoch"),
            createdBy: sql<number>`${by.userId}`.as("created_by"),
            createdByDevice: sql<number>`${by.deviceId}`.as("created_by_device"),
            commitId: sql<string>`${commitId}`.as("commit_id"),
            createdAt: sql<string>`${now}`.as("created_at"),
          })
          .from(conversations)
          .where(
            and(
              eq(conversations.id, conversationId),
              eq(conversations.epoch, epoch - 1),
              isMember(conversationId, by.userId),
              newcomer ? sql`not ${isParticipant(conversationId, newcomer.userId)}` : undefined,
            ),
          ),
      )
      .onConflictDoNothing()
      .returning({ epoch: epochs.epoch }),
    ...(newcomer
      ? [
          db.insert(participants).select(
            db
              .select({
                conversationId: conversations.id,
                userId: sql<number>`${newcomer.userId}`.as("user_id"),
                username: sql<string>`${newcomer.username}`.as("username"),
                joinedAt: sql<string>`${now}`.as("joined_at"),
                joinedSeq: conversations.lastSeq,
                joinedEpoch: sql<number>`${epoch}`.as("joined_epoch"),
                role: sql<"member">`'member'`.as("role"),
                status: sql<"member" | "invited">`${newcomer.status}`.as("status"),
                addedBy: sql<number>`${by.userId}`.as("added_by"),
                lastReadSeq: sql<number>`0`.as("last_read_seq"),
              })
              .from(conversations)
              .where(and(eq(conversations.id, conversationId), won)),
          ),
        ]
      : []),
    ...insertKeysStatements(db, { conversationId, epoch, keys: commit.keys, by, guard: won }),
    db
      .update(conversations)
      .set({
        epoch,
        rotationNeeded: sql`${coverageMismatch(conversationId, epoch)}`,
      })
      .where(and(eq(conversations.id, conversationId), won)),
    ...view,
  ]);
  const inserted = results[0] as unknown[];
  if (inserted.length === 0) return { committed: false };
  return { committed: true, view: viewFrom(results.slice(-3) as unknown as Parameters<typeof viewFrom>[0]) };
}
