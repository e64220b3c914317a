import { and, desc, eq, gt, inArray, isNull, sql } from "drizzle-orm";
import type { Database } from "../env";
import { Prebuilt, slot } from "./prebuilt";
import { devices, refreshTokens, sessions, socketTickets } from "./schema/directory";

export interface SessionState {
  username: string;
  deviceStatus: "active" | "pending" | "revoked";
}

/** One light read per request: whether the token's session is alive, and its device's status. */
export async function liveSession(
  db: Database,
  identity: { userId: number; deviceId: number; sessionId: number },
): Promise<Pick<SessionState, "deviceStatus"> | undefined> {
  const { sessionId, userId, deviceId } = identity;
  const row = await sessionState
    .bind(db, { sessionId, userId, deviceId })
    .first<{ status: SessionState["deviceStatus"] }>();
  return row ? { deviceStatus: row.status } : undefined;
}

// Read by nearly every request (src/middleware/auth.ts): prebuilt (src/db/prebuilt.ts).
const sessionState = new Prebuilt((db) =>
  db
    .select({ deviceStatus: devices.status })
    .from(sessions)
    .innerJoin(devices, eq(devices.id, sessions.deviceId))
    .where(
      and(
        eq(sessions.id, slot<number>("sessionId")),
        eq(sessions.userId, slot<number>("userId")),
        eq(sessions.deviceId, slot<number>("deviceId")),
        isNull(sessions.endedAt),
      ),
    ),
);

const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

/** Statements that open a session for `deviceId` with its first refresh token (the session id is the newest). */
export function openSessionStatements(
  db: Database,
  input: {
    userId: number | ReturnType<typeof sql>;
    deviceId: number | ReturnType<typeof sql>;
    refreshHash: Uint8Array;
    refreshTtlSeconds: number;
  },
) {
  const now = new Date().toISOString();
  return [
    db
      .insert(sessions)
      .values({ userId: input.userId, deviceId: input.deviceId, createdAt: now, lastUsedAt: now })
      .returning({ id: sessions.id }),
    db.insert(refreshTokens).values({
      hash: input.refreshHash,
      sessionId: sql`(select max(${sessions.id}) from ${sessions})`,
      expiresAt: inSeconds(input.refreshTtlSeconds),
    }),
  ] as const;
}

export async function openSession(
  db: Database,
  input: { userId: number; deviceId: number; refreshHash: Uint8Array; refreshTtlSeconds: number },
): Promise<number> {
  const [[session]] = await db.batch([
    ...openSessionStatements(db, input),
    db.update(devices).set({ lastSeenAt: new Date().toISOString() }).where(eq(devices.id, input.deviceId)),
  ]);
  return session!.id;
}

/**
 * A new, pending device and its first session in one batch: a login that fails leaves no device
 * behind. The device's id is the newest (D1 runs a batch as one transaction, writes one at a time).
 */
export async function openSessionOnNewDevice(
  db: Database,
  input: {
    userId: number;
    device: { name: string; identityKey: Uint8Array; signingKey: Uint8Array };
    refreshHash: Uint8Array;
    refreshTtlSeconds: number;
  },
): Promise<{ device: typeof devices.$inferSelect; sessionId: number }> {
  const now = new Date().toISOString();
  const [[device], [session]] = await db.batch([
    db
      .insert(devices)
      .values({ ...input.device, userId: input.userId, status: "pending", createdAt: now, lastSeenAt: now })
      .returning(),
    ...openSessionStatements(db, { ...input, deviceId: sql`(select max(${devices.id}) from ${devices})` }),
  ]);
  return { device: device!, sessionId: session!.id };
}

export type RefreshOutcome =
  | { kind: "rotated"; userId: number; deviceId: number; sessionId: number; deviceStatus: "active" | "pending" }
  | { kind: "reused"; userId: number; sessionId: number }
  | { kind: "invalid" };

/**
 * Spends a refresh token and issues the next one, in one batch: the token is marked used only if
 * it was unused, unexpired and its session alive; the new token is stored only if that happened.
 * A token that was already used comes back as `reused`: the caller ends the whole session.
 */
export async function rotateRefreshToken(
  db: Database,
  presented: Uint8Array,
  next: Uint8Array,
  refreshTtlSeconds: number,
): Promise<RefreshOutcome> {
  const now = new Date().toISOString();
  const aliveSession = sql`exists (select 1 from ${sessions} join ${devices} on ${devices.id} = ${sessions.deviceId}
    where ${sessions.id} = ${refreshTokens.sessionId} and ${sessions.endedAt} is null and ${devices.status} != 'revoked')`;
  const [spent, , , previous] = await db.batch([
    db
      .update(refreshTokens)
      .set({ usedAt: now })
      .where(
        and(
          eq(refreshTokens.hash, presented),
          isNull(refreshTokens.usedAt),
          gt(refreshTokens.expiresAt, now),
          aliveSession,
        ),
      )
      .returning({ sessionId: refreshTokens.sessionId }),
    db.insert(refreshTokens).select(
      db
        .select({
          hash: sql<Uint8Array>`${next}`.as("hash"),
          sessionId: refreshTokens.sessionId,
          expiresAt: sql<string>`${inSeconds(refreshTtlSeconds)}`.as("expires_at"),
          usedAt: sql<string | null>`null`.as("used_at"),
        })
        .from(refreshTokens)
        .where(and(eq(refreshTokens.hash, presented), eq(refreshTokens.usedAt, now))),
    ),
    // In the same batch: a failure after the token was spent would burn it without handing out the next one.
    db
      .update(sessions)
      .set({ lastUsedAt: now })
      .where(
        sql`${sessions.id} in (select ${refreshTokens.sessionId} from ${refreshTokens} where ${refreshTokens.hash} = ${presented} and ${refreshTokens.usedAt} = ${now})`,
      ),
    db
      .select({
        sessionId: sessions.id,
        userId: sessions.userId,
        deviceId: sessions.deviceId,
        status: devices.status,
        usedAt: refreshTokens.usedAt,
      })
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .innerJoin(devices, eq(devices.id, sessions.deviceId))
      .where(eq(refreshTokens.hash, presented)),
  ]);
  const row = previous[0];
  if (!row) return { kind: "invalid" };
  if (spent.length > 0 && row.status !== "revoked") {
    return {
      kind: "rotated",
      userId: row.userId,
      deviceId: row.deviceId,
      sessionId: row.sessionId,
      deviceStatus: row.status,
    };
  }
  // Used before this request (not by it): someone replayed it.
  if (row.usedAt !== null && row.usedAt !== now)
    return { kind: "reused", userId: row.userId, sessionId: row.sessionId };
  return { kind: "invalid" };
}

/** Ends sessions that are still alive; returns the ids that ended now. */
/** The live sessions `where` picks (what `endSessionsEverywhere` is then given to end). */
export async function liveSessionsWhere(
  db: Database,
  where: { sessionIds?: number[]; userId: number; deviceId?: number; exceptSessionId?: number },
): Promise<{ id: number; deviceId: number }[]> {
  return db.select({ id: sessions.id, deviceId: sessions.deviceId }).from(sessions).where(endSessionsWhere(where));
}

export function endSessionsWhere(where: {
  sessionIds?: number[];
  userId?: number;
  deviceId?: number;
  exceptSessionId?: number;
}) {
  return and(
    isNull(sessions.endedAt),
    where.sessionIds ? inArray(sessions.id, where.sessionIds) : undefined,
    where.userId !== undefined ? eq(sessions.userId, where.userId) : undefined,
    where.deviceId !== undefined ? eq(sessions.deviceId, where.deviceId) : undefined,
    where.exceptSessionId !== undefined ? sql`${sessions.id} != ${where.exceptSessionId}` : undefined,
  );
}

export function endSessionsStatement(db: Database, where: Parameters<typeof endSessionsWhere>[0]) {
  return db.update(sessions).set({ endedAt: new Date().toISOString() }).where(endSessionsWhere(where));
}

export async function listLiveSessions(db: Database, userId: number) {
  return db
    .select({
      id: sessions.id,
      deviceId: sessions.deviceId,
      createdAt: sessions.createdAt,
      lastUsedAt: sessions.lastUsedAt,
    })
    .from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.endedAt)))
    .orderBy(desc(sessions.id));
}

// ---- WebSocket tickets ----

export async function storeTicket(
  db: Database,
  ticket: { hash: Uint8Array; sessionId: number; tokenExp: number; ttlSeconds: number },
): Promise<void> {
  await db.insert(socketTickets).values({
    hash: ticket.hash,
    sessionId: ticket.sessionId,
    tokenExp: ticket.tokenExp,
    expiresAt: inSeconds(ticket.ttlSeconds),
  });
}

export interface TicketIdentity {
  userId: number;
  deviceId: number;
  sessionId: number;
  tokenExp: number;
  deviceStatus: "active" | "pending" | "revoked";
}

/** Spends a ticket (single use: deleted whether or not it is still valid) and reads its live session. */
export async function redeemTicket(db: Database, hash: Uint8Array): Promise<TicketIdentity | undefined> {
  const [found] = await db.batch([
    db
      .select({
        userId: sessions.userId,
        deviceId: sessions.deviceId,
        sessionId: sessions.id,
        tokenExp: socketTickets.tokenExp,
        deviceStatus: devices.status,
      })
      .from(socketTickets)
      .innerJoin(sessions, eq(sessions.id, socketTickets.sessionId))
      .innerJoin(devices, eq(devices.id, sessions.deviceId))
      .where(
        and(
          eq(socketTickets.hash, hash),
          gt(socketTickets.expiresAt, new Date().toISOString()),
          isNull(sessions.endedAt),
        ),
      ),
    db.delete(socketTickets).where(eq(socketTickets.hash, hash)),
  ]);
  return found[0];
}
