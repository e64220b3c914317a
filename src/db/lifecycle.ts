import { and, eq, ne, sql } from "drizzle-orm";
import type { Database } from "../env";
import { conversationsOfUser } from "./conversations";
import { flagUncovered } from "./coverage";
import { insertApprovalKeysStatement } from "./keys";
import { tombstoneSenderStatement } from "./messages";
import { conversations, devices, epochKeys, participants, users } from "./schema";
import { endSessionsStatement, openSessionStatements } from "./sessions";
import type { DeviceKeys } from "./users";

/*
 * Account changes that reach into conversation data (keys, rotation, participation), each one
 * atomic batch. When the two groups move to separate databases, these become two-step operations.
 */

/** SQL: the ids of a user's devices (any status). */
const devicesOfUser = (userId: number) => sql`select ${devices.id} from ${devices} where ${devices.userId} = ${userId}`;

/** Flags every conversation in which one of `deviceIds`' keys belongs to the current epoch. */
const flagHeldCurrentKeys = (db: Database, deviceIds: ReturnType<typeof sql>) =>
  db
    .update(conversations)
    .set({ rotationNeeded: true })
    .where(
      sql`exists (select 1 from ${epochKeys} where ${epochKeys.conversationId} = ${conversations.id} and ${epochKeys.epoch} = ${conversations.epoch} and ${epochKeys.deviceId} in (${deviceIds}))`,
    );

export interface Approval {
  userId: number;
  deviceId: number;
  signature: Uint8Array;
  provisioning: Uint8Array;
  keys: { conversationId: number; epoch: number; wrappedKey: Uint8Array; signature: Uint8Array }[];
  by: { userId: number; deviceId: number };
}

/**
 * Activates a pending device with its wrapped keys; `false` if it was no longer pending. A key for
 * an epoch that moved on since the caller's check is dropped, and the last statement flags that
 * conversation for rotation instead: the new device is never silently left without a key.
 */
export async function approveDevice(db: Database, approval: Approval): Promise<boolean> {
  const [activated] = await db.batch([
    db
      .update(devices)
      .set({ status: "active", signature: approval.signature, provisioning: approval.provisioning })
      .where(and(eq(devices.id, approval.deviceId), eq(devices.userId, approval.userId), eq(devices.status, "pending")))
      .returning({ id: devices.id }),
    ...insertApprovalKeysStatement(db, approval),
    flagUncovered(db, conversationsOfUser(approval.userId)),
  ]);
  return activated.length > 0;
}

/** Revokes a device: its sessions end, its keys go, and every epoch it held a key of needs rotating. */
export async function revokeDevice(db: Database, userId: number, deviceId: number): Promise<boolean> {
  const [revoked] = await db.batch([
    db
      .update(devices)
      .set({ status: "revoked", provisioning: null })
      .where(and(eq(devices.id, deviceId), eq(devices.userId, userId), ne(devices.status, "revoked")))
      .returning({ id: devices.id }),
    endSessionsStatement(db, { deviceId }),
    flagHeldCurrentKeys(db, sql`${deviceId}`),
    db.delete(epochKeys).where(eq(epochKeys.deviceId, deviceId)),
  ]);
  return revoked.length > 0;
}

/**
 * Identity reset: a new account key and a new active device with a new session; every old device
 * is revoked (sessions, keys) and every conversation the user is in needs rotating.
 */
export async function resetIdentity(
  db: Database,
  input: {
    userId: number;
    accountKey: Uint8Array;
    device: DeviceKeys;
    refreshHash: Uint8Array;
    refreshTtlSeconds: number;
  },
): Promise<{ deviceId: number; sessionId: number }> {
  const now = new Date().toISOString();
  const { userId } = input;
  const newDeviceId = sql`(select max(${devices.id}) from ${devices})`;
  const results = await db.batch([
    db.update(users).set({ accountKey: input.accountKey }).where(eq(users.id, userId)),
    endSessionsStatement(db, { userId }),
    flagHeldCurrentKeys(db, devicesOfUser(userId)),
    db.delete(epochKeys).where(sql`${epochKeys.deviceId} in (${devicesOfUser(userId)})`),
    db
      .update(devices)
      .set({ status: "revoked", provisioning: null })
      .where(and(eq(devices.userId, userId), ne(devices.status, "revoked"))),
    db
      .insert(devices)
      .values({ ...input.device, userId, status: "active", createdAt: now, lastSeenAt: now })
      .returning({ id: devices.id }),
    ...openSessionStatements(db, {
      userId,
      deviceId: newDeviceId,
      refreshHash: input.refreshHash,
      refreshTtlSeconds: input.refreshTtlSeconds,
    }),
    flagUncovered(db, conversationsOfUser(userId)),
  ]);
  const device = (results[5] as { id: number }[])[0]!;
  const session = (results[6] as { id: number }[])[0]!;
  return { deviceId: device.id, sessionId: session.id };
}

/**
 * Deletes an account: the user leaves every conversation (each needs rotating), their messages
 * become tombstones, and the account row goes with its devices, sessions and tickets (cascade),
 * which frees the username.
 */
export async function deleteAccount(db: Database, userId: number): Promise<void> {
  await db.batch([
    db
      .update(conversations)
      .set({ rotationNeeded: true })
      .where(sql`${conversations.id} in (${conversationsOfUser(userId)})`),
    db.delete(epochKeys).where(sql`${epochKeys.deviceId} in (${devicesOfUser(userId)})`),
    db.delete(participants).where(eq(participants.userId, userId)),
    tombstoneSenderStatement(db, userId),
    db.delete(users).where(eq(users.id, userId)),
  ]);
}
