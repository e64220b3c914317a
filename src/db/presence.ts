import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import { inboxPresence, participants } from "./schema";

/** Records whether `userId` has an inbox socket open; a write with an older `version` loses. */
export async function setInboxPresence(db: Database, userId: number, online: boolean, version: number): Promise<void> {
  await db
    .insert(inboxPresence)
    .values({ userId, online, version })
    .onConflictDoUpdate({
      target: inboxPresence.userId,
      set: { online, version },
      setWhere: sql`${inboxPresence.version} < ${version}`,
    });
}

/** The participants of a conversation whose inbox has a device connected: where to forward its messages. */
export function onlineInboxesQuery(db: Database, conversationId: number) {
  return db
    .select({ userId: participants.userId })
    .from(participants)
    .innerJoin(inboxPresence, eq(inboxPresence.userId, participants.userId))
    .where(and(eq(participants.conversationId, conversationId), eq(inboxPresence.online, true)));
}

export async function onlineInboxes(db: Database, conversationId: number): Promise<number[]> {
  return (await onlineInboxesQuery(db, conversationId)).map((r) => r.userId);
}
