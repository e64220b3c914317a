import { eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { ParticipantStatus } from "./conversations";
import { senderMayPost } from "./coverage";
import { Prebuilt, slot } from "./prebuilt";
import { conversations, participants } from "./schema/shard";

export interface ShardAdmission {
  /** The conversation's last seq: where a room with no ordering state yet starts delivering. */
  lastSeq: number;
  /** The caller's status in the conversation; `null` if they do not take part in it. */
  status: ParticipantStatus | null;
  /**
   * The shard's mirror has the session alive and its device active (src/db/mirror.ts). Revocations
   * reach every shard before the directory, so this is never true for a session the directory has
   * ended; `false` only says the mirror cannot vouch (e.g. a session it has no copy of yet).
   */
  live: boolean;
}

const conversationId = slot<number>("conversationId");
const caller = {
  userId: slot<number>("userId"),
  deviceId: slot<number>("deviceId"),
  sessionId: slot<number>("sessionId"),
};

// Read by every conversation socket's admission: prebuilt (src/db/prebuilt.ts).
const admissionRow = new Prebuilt((db) =>
  db
    .select({
      lastSeq: conversations.lastSeq,
      status:
        sql`(select ${participants.status} from ${participants} where ${participants.conversationId} = ${conversations.id} and ${participants.userId} = ${caller.userId})`.as(
          "status",
        ),
      live: sql`${senderMayPost(caller)}`.as("live"),
    })
    .from(conversations)
    .where(eq(conversations.id, conversationId)),
);

/**
 * A conversation socket's admission in one read of the conversation's shard: participation, the
 * room's `lastSeq` baseline and whether the shard's mirror vouches for the session. `undefined`
 * if the shard holds no such conversation.
 */
export async function admissionInShard(
  db: Database,
  id: number,
  identity: { userId: number; deviceId: number; sessionId: number },
): Promise<ShardAdmission | undefined> {
  const row = await admissionRow
    .bind(db, { conversationId: id, ...identity })
    .first<{ last_seq: number; status: ParticipantStatus | null; live: number }>();
  return row ? { lastSeq: row.last_seq, status: row.status, live: row.live === 1 } : undefined;
}
