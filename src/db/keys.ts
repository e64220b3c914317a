import { sql } from "drizzle-orm";
import type { Database } from "../env";
import { epochKeys } from "./schema/shard";

export interface WrappedKey {
  deviceId: number;
  wrappedKey: Uint8Array;
  signature: Uint8Array;
}

export interface KeyRow {
  conversationId: number;
  epoch: number;
  deviceId: number;
  wrappedKey: Uint8Array;
  signature: Uint8Array;
  wrappedByUser: number;
  wrappedByDevice: number;
  createdAt: string;
}

export const toHex = (bytes: Uint8Array) => (bytes as Uint8Array & { toHex(): string }).toHex();

// D1 allows 100 KB per statement: a key is at most ~2 KB of hex, so 40 keys stay well under it.
const KEYS_PER_STATEMENT = 40;

/**
 * Statements inserting wrapped keys as JSON rows (one bound parameter per chunk, whatever the
 * count), each only if `guard` holds when it runs.
 */
export function insertKeysStatements(
  db: Database,
  input: {
    conversationId: number | ReturnType<typeof sql>;
    epoch: number;
    keys: WrappedKey[];
    by: { userId: number; deviceId: number };
    guard: ReturnType<typeof sql>;
    /** The commit's own timestamp, so that what the caller presents is what is stored. */
    createdAt?: string;
  },
) {
  const now = input.createdAt ?? new Date().toISOString();
  const chunks: WrappedKey[][] = [];
  for (let i = 0; i < input.keys.length; i += KEYS_PER_STATEMENT)
    chunks.push(input.keys.slice(i, i + KEYS_PER_STATEMENT));
  return chunks.map((chunk) => {
    const rows = JSON.stringify(chunk.map((k) => ({ d: k.deviceId, k: toHex(k.wrappedKey), s: toHex(k.signature) })));
    return db.insert(epochKeys).select(
      db
        .select({
          conversationId: sql<number>`${input.conversationId}`.as("conversation_id"),
          epoch: sql<number>`${input.epoch}`.as("epoch"),
          deviceId: sql<number>`j.value ->> 'd'`.as("device_id"),
          wrappedKey: sql<Uint8Array>`unhex(j.value ->> 'k')`.as("wrapped_key"),
          signature: sql<Uint8Array>`unhex(j.value ->> 's')`.as("signature"),
          wrappedByUser: sql<number>`${input.by.userId}`.as("wrapped_by_user"),
          wrappedByDevice: sql<number>`${input.by.deviceId}`.as("wrapped_by_device"),
          createdAt: sql<string>`${now}`.as("created_at"),
        })
        .from(sql`json_each(${rows}) j`)
        .where(input.guard),
    );
  });
}

/** Keys as ApprovalKey-like rows: per conversation, for one device, each at its own epoch. */
export function insertApprovalKeysStatement(
  db: Database,
  input: {
    deviceId: number;
    keys: { conversationId: number; epoch: number; wrappedKey: Uint8Array; signature: Uint8Array }[];
    by: { userId: number; deviceId: number };
  },
) {
  const now = new Date().toISOString();
  const chunks: (typeof input.keys)[] = [];
  for (let i = 0; i < input.keys.length; i += KEYS_PER_STATEMENT)
    chunks.push(input.keys.slice(i, i + KEYS_PER_STATEMENT));
  return chunks.map((chunk) => {
    const rows = JSON.stringify(
      chunk.map((k) => ({ c: k.conversationId, e: k.epoch, k: toHex(k.wrappedKey), s: toHex(k.signature) })),
    );
    // Only under the epoch that is still current: a key for an epoch that moved on meanwhile is dropped,
    // and the coverage check of the same batch flags that conversation for rotation.
    return db
      .insert(epochKeys)
      .select(
        db
          .select({
            conversationId: sql<number>`c.id`.as("conversation_id"),
            epoch: sql<number>`c.epoch`.as("epoch"),
            deviceId: sql<number>`${input.deviceId}`.as("device_id"),
            wrappedKey: sql<Uint8Array>`unhex(j.value ->> 'k')`.as("wrapped_key"),
            signature: sql<Uint8Array>`unhex(j.value ->> 's')`.as("signature"),
            wrappedByUser: sql<number>`${input.by.userId}`.as("wrapped_by_user"),
            wrappedByDevice: sql<number>`${input.by.deviceId}`.as("wrapped_by_device"),
            createdAt: sql<string>`${now}`.as("created_at"),
          })
          .from(sql`json_each(${rows}) j join conversations c on c.id = j.value ->> 'c' and c.epoch = j.value ->> 'e'`)
          .where(
            sql`exists (select 1 from participants p where p.conversation_id = c.id and p.user_id = ${input.by.userId})
              and exists (select 1 from devices d where d.id = ${input.deviceId} and d.status = 'active')`,
          ),
      )
      .onConflictDoNothing();
  });
}
