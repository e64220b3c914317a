import { and, isNull, type SQLWrapper, sql } from "drizzle-orm";
import type { Database } from "../env";
import { flagUncovered } from "./coverage";
import { toHex } from "./keys";
import * as directory from "./schema/directory";
import { accountSettings, devices, participants, sessions } from "./schema/shard";

/*
 * The account mirror: each shard keeps copies of the account facts its own invariants read (which
 * devices a participant has and their status, which sessions are alive, the read-receipt setting),
 * so that a message's sender check and an epoch's coverage stay one atomic batch in one database.
 *
 * Copies only ever move forward: a device goes pending → active → revoked and never back, an ended
 * session stays ended, a setting is replaced only by a newer one. Any copy may therefore be applied
 * late, twice or out of order without undoing a revocation. Revocations are written to every shard
 * before the directory (src/db/accounts.ts); grants reach a shard when it first needs them (a sync
 * before a user joins a conversation there, and again when it refuses a sender the directory accepts).
 */

export interface DeviceCopy {
  id: number;
  userId: number;
  identityKey: Uint8Array;
  signingKey: Uint8Array;
  signature: Uint8Array | null;
  status: "active" | "pending" | "revoked";
  createdAt: string;
}

export interface AccountSnapshot {
  userIds: number[];
  devices: DeviceCopy[];
  liveSessions: { id: number; userId: number; deviceId: number }[];
  settings: { userId: number; readReceipts: boolean }[];
  /** When the snapshot was read (ms): the settings' version. */
  readAt: number;
}

/** What the shards need to know of `userIds`, read from the directory in one batch. */
export async function readAccountSnapshot(db: Database, userIds: number[]): Promise<AccountSnapshot> {
  const ids = JSON.stringify(userIds);
  const inUsers = (column: SQLWrapper) => sql`${column} in (select value from json_each(${ids}))`;
  const readAt = Date.now();
  const [deviceRows, sessionRows, settingRows] = await db.batch([
    db
      .select({
        id: directory.devices.id,
        userId: directory.devices.userId,
        identityKey: directory.devices.identityKey,
        signingKey: directory.devices.signingKey,
        signature: directory.devices.signature,
        status: directory.devices.status,
        createdAt: directory.devices.createdAt,
      })
      .from(directory.devices)
      .where(inUsers(directory.devices.userId)),
    db
      .select({ id: directory.sessions.id, userId: directory.sessions.userId, deviceId: directory.sessions.deviceId })
      .from(directory.sessions)
      .where(and(inUsers(directory.sessions.userId), isNull(directory.sessions.endedAt))),
    db
      .select({ userId: directory.users.id, readReceipts: directory.users.readReceipts })
      .from(directory.users)
      .where(inUsers(directory.users.id)),
  ]);
  return { userIds, devices: deviceRows, liveSessions: sessionRows, settings: settingRows, readAt };
}

// Status only moves forward: the larger rank wins whichever copy arrives last.
const forwardStatus = sql`case
  when ${devices.status} = 'revoked' or excluded.status = 'revoked' then 'revoked'
  when ${devices.status} = 'active' or excluded.status = 'active' then 'active'
  else 'pending' end`;

/** Statements that copy device rows into a shard (moving forward only). */
export function copyDevicesStatements(db: Database, rows: DeviceCopy[]) {
  const ROWS_PER_STATEMENT = 200;
  const statements = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const json = JSON.stringify(
      rows.slice(i, i + ROWS_PER_STATEMENT).map((d) => ({
        i: d.id,
        u: d.userId,
        k: toHex(d.identityKey),
        g: toHex(d.signingKey),
        s: d.signature ? toHex(d.signature) : null,
        t: d.status,
        c: d.createdAt,
      })),
    );
    statements.push(
      db
        .insert(devices)
        .select(
          db
            .select({
              id: sql<number>`j.value ->> 'i'`.as("id"),
              userId: sql<number>`j.value ->> 'u'`.as("user_id"),
              identityKey: sql<Uint8Array>`unhex(j.value ->> 'k')`.as("identity_key"),
              signingKey: sql<Uint8Array>`unhex(j.value ->> 'g')`.as("signing_key"),
              signature: sql<Uint8Array | null>`unhex(j.value ->> 's')`.as("signature"),
              status: sql<"active">`j.value ->> 't'`.as("status"),
              createdAt: sql<string>`j.value ->> 'c'`.as("created_at"),
            })
            .from(sql`json_each(${json}) j`)
            .where(sql`1`),
        )
        .onConflictDoUpdate({
          target: devices.id,
          set: { status: forwardStatus, signature: sql`coalesce(excluded.signature, ${devices.signature})` },
        }),
    );
  }
  return statements;
}

/**
 * Statements that bring a shard's copy of `snapshot`'s users up to it: devices (forward only), live
 * sessions added, every other session of theirs ended, settings if newer, and rotation flagged where
 * their devices changed coverage.
 */
export function applySnapshotStatements(db: Database, snapshot: AccountSnapshot) {
  const users = JSON.stringify(snapshot.userIds);
  const live = JSON.stringify(snapshot.liveSessions.map((s) => ({ i: s.id, u: s.userId, d: s.deviceId })));
  const settings = JSON.stringify(snapshot.settings.map((s) => ({ u: s.userId, r: s.readReceipts ? 1 : 0 })));
  const endedAt = new Date(snapshot.readAt).toISOString();
  return [
    ...copyDevicesStatements(db, snapshot.devices),
    db
      .insert(sessions)
      .select(
        db
          .select({
            id: sql<number>`j.value ->> 'i'`.as("id"),
            userId: sql<number>`j.value ->> 'u'`.as("user_id"),
            deviceId: sql<number>`j.value ->> 'd'`.as("device_id"),
            endedAt: sql<string | null>`null`.as("ended_at"),
          })
          .from(sql`json_each(${live}) j`)
          .where(sql`1`),
      )
      .onConflictDoNothing(),
    db
      .update(sessions)
      .set({ endedAt })
      .where(
        and(
          isNull(sessions.endedAt),
          sql`${sessions.userId} in (select value from json_each(${users}))`,
          sql`${sessions.id} not in (select j.value ->> 'i' from json_each(${live}) j)`,
        ),
      ),
    db
      .insert(accountSettings)
      .select(
        db
          .select({
            userId: sql<number>`j.value ->> 'u'`.as("user_id"),
            readReceipts: sql<boolean>`j.value ->> 'r'`.as("read_receipts"),
            version: sql<number>`${snapshot.readAt}`.as("version"),
          })
          .from(sql`json_each(${settings}) j`)
          .where(sql`1`),
      )
      .onConflictDoUpdate({
        target: accountSettings.userId,
        set: { readReceipts: sql`excluded.read_receipts`, version: sql`excluded.version` },
        setWhere: sql`excluded.version > ${accountSettings.version}`,
      }),
    flagUncovered(
      db,
      sql`select ${participants.conversationId} from ${participants} where ${participants.userId} in (select value from json_each(${users}))`,
    ),
  ];
}

/** Writes a snapshot into one shard's mirror, in one batch (idempotent). */
export async function applySnapshot(shard: Database, snapshot: AccountSnapshot): Promise<void> {
  const [first, ...rest] = applySnapshotStatements(shard, snapshot);
  await shard.batch([first!, ...rest]);
}

/** Copies `userIds`' account facts from the directory into one shard (idempotent). */
export async function syncAccounts(directoryDb: Database, shard: Database, userIds: number[]): Promise<void> {
  if (userIds.length === 0) return;
  await applySnapshot(shard, await readAccountSnapshot(directoryDb, userIds));
}

/** The active devices of a snapshot: what a join's keys must cover. */
export const activeDevices = (snapshot: AccountSnapshot): DeviceCopy[] =>
  snapshot.devices.filter((d) => d.status === "active").sort((a, b) => a.id - b.id);

/**
 * Revocation in a shard's copy, as tombstones: `deviceIds` revoked and `sessions` ended, whether or
 * not a copy of them reached this shard yet, so that no copy read before the revocation can bring
 * them back. (`flagUncovered` after it, in the same batch, asks for rotation where it matters.)
 */
export function revokeCopiesStatements(
  db: Database,
  what: { userId: number; deviceIds: number[]; sessions: { id: number; deviceId: number }[] },
) {
  const now = new Date().toISOString();
  const deviceRows = JSON.stringify(what.deviceIds);
  const sessionRows = JSON.stringify(what.sessions.map((s) => ({ i: s.id, d: s.deviceId })));
  return [
    db
      .insert(devices)
      .select(
        db
          .select({
            id: sql<number>`j.value`.as("id"),
            userId: sql<number>`${what.userId}`.as("user_id"),
            identityKey: sql<null>`null`.as("identity_key"),
            signingKey: sql<null>`null`.as("signing_key"),
            signature: sql<null>`null`.as("signature"),
            status: sql<"revoked">`'revoked'`.as("status"),
            createdAt: sql<null>`null`.as("created_at"),
          })
          .from(sql`json_each(${deviceRows}) j`)
          .where(sql`1`),
      )
      .onConflictDoUpdate({
        target: devices.id,
        set: { status: "revoked" },
        setWhere: sql`${devices.userId} = excluded.user_id`,
      }),
    db
      .insert(sessions)
      .select(
        db
          .select({
            id: sql<number>`j.value ->> 'i'`.as("id"),
            userId: sql<number>`${what.userId}`.as("user_id"),
            deviceId: sql<number>`j.value ->> 'd'`.as("device_id"),
            endedAt: sql<string>`${now}`.as("ended_at"),
          })
          .from(sql`json_each(${sessionRows}) j`)
          .where(sql`1`),
      )
      .onConflictDoUpdate({
        target: sessions.id,
        set: { endedAt: sql`coalesce(${sessions.endedAt}, excluded.ended_at)` },
      }),
    flagUncovered(
      db,
      sql`select ${participants.conversationId} from ${participants} where ${participants.userId} = ${what.userId}`,
    ),
  ] as const;
}
