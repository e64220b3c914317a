import { and, asc, eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import { conversations, devices, epochKeys, participants, sessions } from "./schema/shard";

/*
 * Where conversation rows (participants, epoch keys) meet account facts (devices, sessions). In a
 * shard these read the shard's own mirror of devices and sessions (src/db/mirror.ts), so coverage
 * and the sender check stay inside the one batch of the write they guard.
 */

/** SQL: the ids of the active devices of `conversationId`'s current participants. */
const activeParticipantDeviceIds = (conversationId: number | ReturnType<typeof sql>) =>
  sql`select ${devices.id} from ${participants} join ${devices} on ${devices.userId} = ${participants.userId} and ${devices.status} = 'active' where ${participants.conversationId} = ${conversationId}`;

/**
 * SQL condition: the keys of `epoch` do not cover exactly the active devices of the current
 * participants (one is missing a key, or a key is held by a device that should not have one).
 */
export function coverageMismatch(
  conversationId: number | ReturnType<typeof sql>,
  epoch: number | ReturnType<typeof sql>,
) {
  return sql`(exists (${activeParticipantDeviceIds(conversationId)} and ${devices.id} not in (select ${epochKeys.deviceId} from ${epochKeys} where ${epochKeys.conversationId} = ${conversationId} and ${epochKeys.epoch} = ${epoch}))
    or exists (select 1 from ${epochKeys} where ${epochKeys.conversationId} = ${conversationId} and ${epochKeys.epoch} = ${epoch} and ${epochKeys.deviceId} not in (${activeParticipantDeviceIds(conversationId)})))`;
}

/**
 * Flags rotation on conversations whose current epoch no longer covers their devices exactly
 * (never clears it: only an epoch commit does). Run in the batch of every change to devices or
 * participants, so that a concurrent change can never leave an uncovered device unflagged.
 */
export function flagUncovered(db: Database, conversationIds: ReturnType<typeof sql>) {
  return db
    .update(conversations)
    .set({ rotationNeeded: true })
    .where(
      and(
        sql`${conversations.id} in (${conversationIds})`,
        coverageMismatch(sql`${conversations.id}`, sql`${conversations.epoch}`),
      ),
    );
}

/** SQL condition: the session is alive and its device active (the sender's check, folded into the message write). */
export function senderMayPost(identity: { userId: number; deviceId: number; sessionId: number }) {
  return sql`exists (select 1 from ${sessions} join ${devices} on ${devices.id} = ${sessions.deviceId}
    where ${sessions.id} = ${identity.sessionId} and ${sessions.userId} = ${identity.userId} and ${sessions.deviceId} = ${identity.deviceId}
      and ${sessions.endedAt} is null and ${devices.status} = 'active')`;
}

export interface ConversationDeviceRow {
  deviceId: number;
  userId: number;
  username: string;
  identityKey: Uint8Array;
  signingKey: Uint8Array;
  signature: Uint8Array | null;
  createdAt: string;
}

/** Every active device of every current participant. */
export async function activeDevicesOfParticipants(
  db: Database,
  conversationId: number,
): Promise<ConversationDeviceRow[]> {
  // An active copy always carries its keys: only a revocation's tombstone has none.
  return db
    .select({
      deviceId: devices.id,
      userId: devices.userId,
      username: participants.username,
      identityKey: devices.identityKey,
      signingKey: devices.signingKey,
      signature: devices.signature,
      createdAt: devices.createdAt,
    })
    .from(participants)
    .innerJoin(devices, and(eq(devices.userId, participants.userId), eq(devices.status, "active")))
    .where(eq(participants.conversationId, conversationId))
    .orderBy(asc(devices.id)) as Promise<ConversationDeviceRow[]>;
}
