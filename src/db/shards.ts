import { type SQL, type SQLWrapper, sql } from "drizzle-orm";
import type { Database } from "../env";
import { createDb } from "./client";
import { gateD1 } from "./gate";
import { SHARD_ID_STRIDE, shardOfId } from "./shard-ids";

export { SHARD_ID_STRIDE, shardOfId };

/** SQL: the next global id of `table` in shard `index` (its largest id plus the stride; the first is `index + stride`). */
export const nextShardId = (table: SQLWrapper, id: SQLWrapper, index: number): SQL =>
  sql`(select coalesce(max(${id}), ${index}) from ${table}) + ${SHARD_ID_STRIDE}`;

export interface Shard {
  index: number;
  db: Database;
}

/** The directory and the shards of one environment (see docs/architecture.md, "Databases"). */
export interface Databases {
  directory: Database;
  /** Every configured shard, by ascending index. */
  shards: readonly Shard[];
  shardAt(index: number): Shard | undefined;
  /** The shard holding a conversation, message or attachment id; `undefined` for an id no shard can hold. */
  shardOf(id: number): Shard | undefined;
  /** The D1 binding of shard `index` (for a session over it: src/db/bookmarks.ts). */
  bindingOf(index: number): D1Database | undefined;
  /** The directory's D1 binding (likewise). */
  directoryBinding: D1Database;
}

/** `SHARD_<n>` D1 bindings: shard `n`. */
export const SHARD_BINDING = /^SHARD_(0|[1-9][0-9]{0,3})$/;

/** The shard bindings of `env`, by index (the Worker's configuration, checked by src/config.ts). */
export function shardBindings(env: object): Map<number, D1Database> {
  const found = new Map<number, D1Database>();
  for (const [name, value] of Object.entries(env)) {
    const match = SHARD_BINDING.exec(name);
    if (match && Number(match[1]) < SHARD_ID_STRIDE && isD1(value)) found.set(Number(match[1]), value);
  }
  return found;
}

const isD1 = (value: unknown): value is D1Database =>
  typeof value === "object" && value !== null && typeof (value as D1Database).prepare === "function";

const cache = new WeakMap<object, Databases>();

/** Drizzle handles over the environment's databases, built once per environment object. */
export function databases(env: Env): Databases {
  const cached = cache.get(env);
  if (cached) return cached;
  const gate = simulatedServiceTime(env);
  const bindings = new Map([...shardBindings(env)].map(([index, d1]) => [index, gate(d1, `SHARD_${index}`)]));
  const directoryBinding = gate(env.DIRECTORY, "DIRECTORY");
  const shards = [...bindings].sort(([a], [b]) => a - b).map(([index, d1]) => ({ index, db: createDb(d1) }));
  const byIndex = new Map(shards.map((s) => [s.index, s]));
  const handles: Databases = {
    directory: createDb(directoryBinding),
    directoryBinding,
    shards,
    shardAt: (index) => byIndex.get(index),
    shardOf: (id) => (Number.isSafeInteger(id) && id > 0 ? byIndex.get(shardOfId(id)) : undefined),
    bindingOf: (index) => bindings.get(index),
  };
  cache.set(env, handles);
  return handles;
}

/**
 * The capacity model of the benchmark (`npm run bench -- --only=shards`): with D1_SERVICE_TIME_MS
 * above 0, every binding serves one statement at a time for that long (src/db/gate.ts). 0 everywhere
 * else; src/config.ts checks the value.
 */
function simulatedServiceTime(env: Env): (d1: D1Database, name: string) => D1Database {
  const serviceMs = Number(env.D1_SERVICE_TIME_MS);
  return serviceMs > 0 ? (d1, name) => gateD1(d1, name, serviceMs) : (d1) => d1;
}
