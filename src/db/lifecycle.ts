import { and, eq, inArray, isNull, ne, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../env";
import { flagUncovered } from "./coverage";
import { insertApprovalKeysStatement } from "./keys";
import { tombstoneSenderStatement } from "./messages";
import { copyDevicesStatements, type DeviceCopy, revokeCopiesStatements, syncAccounts } from "./mirror";
import { conversationsOfUser } from "./participation";
import { devices, pushSubscriptions, sessions, users } from "./schema/directory";
import { accountSettings, conversations, epochKeys, participants } from "./schema/shard";
import { endSessionsStatement, openSessionStatements } from "./sessions";
import { type Databases, shardOfId } from "./shards";
import { shardsOfUser } from "./user-conversations";
import { type DeviceKeys, updateSettings } from "./users";

/*
 * Account changes that reach into conversation data (keys, rotation, participation). Each is one
 * batch per shard and one in the directory, which cannot be one transaction, so the order is fixed:
 * every shard first, then the directory. A shard is where access to a conversation is decided, so a
 * revocation takes effect there before the directory says it happened; if a shard fails, nothing is
 * written to the directory and the caller gets an error to retry (every shard step is idempotent).
 * If the directory then fails, the shards are ahead: a revocation already refuses, an approval the
 * owner asked for already counts, and the retry completes it.
 */

type Statements = [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]];

/**
 * Runs `build(shard)` as one batch on every shard, in parallel, and waits for all of them (a shard
 * that fails must not cut the others' writes short); then rejects if any failed.
 */
async function onEveryShard(dbs: Databases, build: (db: Database, index: number) => BatchItem<"sqlite">[]) {
  const outcomes = await Promise.allSettled(
    dbs.shards.map(({ db, index }) => {
      const statements = build(db, index);
      return statements.length > 0 ? db.batch(statements as Statements) : undefined;
    }),
  );
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
  if (failed) throw failed.reason;
}

/** What a shard must drop of revoked devices: their keys, after rotation was flagged where they held current ones. */
const dropKeysOf = (db: Database, deviceIds: number[]) =>
  db.delete(epochKeys).where(inArray(epochKeys.deviceId, deviceIds));

/** A user's devices and live sessions, read before a change that revokes them. */
async function devicesAndLiveSessions(directory: Database, userId: number) {
  const [deviceRows, sessionRows] = await directory.batch([
    directory.select({ id: devices.id }).from(devices).where(eq(devices.userId, userId)),
    directory
      .select({ id: sessions.id, deviceId: sessions.deviceId })
      .from(sessions)
      .where(and(eq(sessions.userId, userId), isNull(sessions.endedAt))),
  ]);
  return { deviceIds: deviceRows.map((d) => d.id), sessions: sessionRows };
}

/** Deletes the push subscriptions of `userId`'s devices (all, or only `deviceId`): a revoked device gets no pushes. */
const unsubscribeStatement = (db: Database, userId: number, deviceId?: number) =>
  db
    .delete(pushSubscriptions)
    .where(
      and(
        sql`${pushSubscriptions.deviceId} in (select ${devices.id} from ${devices} where ${devices.userId} = ${userId})`,
        deviceId === undefined ? undefined : eq(pushSubscriptions.deviceId, deviceId),
      ),
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
 * Activates a pending device with its wrapped keys; `false` if it was no longer pending. In each
 * shard: the device's copy turns active, its keys go in (a key for an epoch that moved on since the
 * caller's check is dropped, and the last statement flags that conversation for rotation instead:
 * the new device is never silently left without a key).
 */
export async function approveDevice(dbs: Databases, approval: Approval, device: DeviceCopy): Promise<boolean> {
  const active: DeviceCopy = { ...device, status: "active", signature: approval.signature };
  await onEveryShard(dbs, (db, index) => [
    ...copyDevicesStatements(db, [active]),
    ...insertApprovalKeysStatement(db, {
      ...approval,
      keys: approval.keys.filter((k) => shardOfId(k.conversationId) === index),
    }),
    flagUncovered(db, conversationsOfUser(approval.userId)),
  ]);
  const activated = await dbs.directory
    .update(devices)
    .set({ status: "active", signature: approval.signature, provisioning: approval.provisioning })
    .where(and(eq(devices.id, approval.deviceId), eq(devices.userId, approval.userId), eq(devices.status, "pending")))
    .returning({ id: devices.id });
  return activated.length > 0;
}

/** Revokes a device: its sessions end, its keys and push subscription go, and every epoch it held a key of needs rotating. */
export async function revokeDevice(dbs: Databases, userId: number, deviceId: number): Promise<boolean> {
  const { sessions: live } = await devicesAndLiveSessions(dbs.directory, userId);
  const ofDevice = live.filter((s) => s.deviceId === deviceId);
  await onEveryShard(dbs, (db) => [
    ...revokeCopiesStatements(db, { userId, deviceIds: [deviceId], sessions: ofDevice }),
    dropKeysOf(db, [deviceId]),
  ]);
  const [revoked] = await dbs.directory.batch([
    dbs.directory
      .update(devices)
      .set({ status: "revoked", provisioning: null })
      .where(and(eq(devices.id, deviceId), eq(devices.userId, userId), ne(devices.status, "revoked")))
      .returning({ id: devices.id }),
    endSessionsStatement(dbs.directory, { deviceId }),
    unsubscribeStatement(dbs.directory, userId, deviceId),
  ]);
  return revoked.length > 0;
}

/** Ends sessions of `userId` (by id): in every shard first, then in the directory; answers those that were live. */
export async function endSessionsEverywhere(
  dbs: Databases,
  userId: number,
  ended: { id: number; deviceId: number }[],
): Promise<number[]> {
  if (ended.length === 0) return [];
  await onEveryShard(dbs, (db) => [...revokeCopiesStatements(db, { userId, deviceIds: [], sessions: ended })]);
  const rows = await dbs.directory
    .update(sessions)
    .set({ endedAt: new Date().toISOString() })
    .where(
      and(
        eq(sessions.userId, userId),
        isNull(sessions.endedAt),
        inArray(
          sessions.id,
          ended.map((s) => s.id),
        ),
      ),
    )
    .returning({ id: sessions.id });
  return rows.map((r) => r.id);
}

/**
 * Identity reset: a new account key and a new active device with a new session; every old device
 * is revoked (sessions, keys, push subscriptions) and every conversation the user is in needs
 * rotating. The new device reaches the user's shards last (a copy, like any grant).
 */
export async function resetIdentity(
  dbs: Databases,
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
  const old = await devicesAndLiveSessions(dbs.directory, userId);
  await onEveryShard(dbs, (db) => [
    ...revokeCopiesStatements(db, { userId, ...old }),
    ...(old.deviceIds.length > 0 ? [dropKeysOf(db, old.deviceIds)] : []),
  ]);
  const directory = dbs.directory;
  const newDeviceId = sql`(select max(${devices.id}) from ${devices})`;
  const results = await directory.batch([
    directory.update(users).set({ accountKey: input.accountKey }).where(eq(users.id, userId)),
    endSessionsStatement(directory, { userId }),
    unsubscribeStatement(directory, userId),
    directory
      .update(devices)
      .set({ status: "revoked", provisioning: null })
      .where(and(eq(devices.userId, userId), ne(devices.status, "revoked"))),
    directory
      .insert(devices)
      .values({ ...input.device, userId, status: "active", createdAt: now, lastSeenAt: now })
      .returning({ id: devices.id }),
    ...openSessionStatements(directory, {
      userId,
      deviceId: newDeviceId,
      refreshHash: input.refreshHash,
      refreshTtlSeconds: input.refreshTtlSeconds,
    }),
  ]);
  const device = (results[4] as { id: number }[])[0]!;
  const session = (results[5] as { id: number }[])[0]!;
  const shards = await shardsOfUser(dbs, userId);
  await Promise.all(shards.map((s) => syncAccounts(directory, s.db, [userId])));
  return { deviceId: device.id, sessionId: session.id };
}

/**
 * Deletes an account. In every shard: its devices and sessions revoked, the user leaves every
 * conversation (each needs rotating), their keys go and their messages become tombstones. Then the
 * directory: push subscriptions, and the account row with its devices, sessions, tickets and shard
 * index (cascade), which frees the username. Their attachments (R2 objects, then rows) are deleted
 * after this, by `deleteAttachmentsOfUser`: tombstones already hide them.
 */
export async function deleteAccount(dbs: Databases, userId: number): Promise<void> {
  const old = await devicesAndLiveSessions(dbs.directory, userId);
  await onEveryShard(dbs, (db) => [
    ...revokeCopiesStatements(db, { userId, ...old }),
    db
      .update(conversations)
      .set({ rotationNeeded: true })
      .where(sql`${conversations.id} in (${conversationsOfUser(userId)})`),
    ...(old.deviceIds.length > 0 ? [dropKeysOf(db, old.deviceIds)] : []),
    db.delete(participants).where(eq(participants.userId, userId)),
    tombstoneSenderStatement(db, userId),
  ]);
  await dbs.directory.batch([
    unsubscribeStatement(dbs.directory, userId),
    dbs.directory.delete(users).where(eq(users.id, userId)),
  ]);
}

/** Settings: every shard's copy first (it decides what others see), then the directory. */
export async function changeSettings(dbs: Databases, userId: number, settings: { readReceipts?: boolean }) {
  const { readReceipts } = settings;
  if (readReceipts !== undefined) {
    const version = Date.now();
    await onEveryShard(dbs, (db) => [
      db
        .insert(accountSettings)
        .values({ userId, readReceipts, version })
        .onConflictDoUpdate({
          target: accountSettings.userId,
          set: { readReceipts, version },
          setWhere: sql`${accountSettings.version} <= ${version}`,
        }),
    ]);
  }
  return updateSettings(dbs.directory, userId, settings);
}
