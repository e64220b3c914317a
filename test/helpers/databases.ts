import { env } from "cloudflare:workers";
import { createDb } from "../../src/db/client";
import { shardBindings, shardOfId } from "../../src/db/shards";

/** The directory's D1 binding (accounts). */
export const directoryD1 = (): D1Database => env.DIRECTORY;

/** Every shard's D1 binding, by ascending index. */
export const shardD1s = (): D1Database[] => [...shardBindings(env)].sort(([a], [b]) => a - b).map(([, d1]) => d1);

/** The D1 binding of the shard holding a conversation, message or attachment id. */
export function shardD1Of(id: number): D1Database {
  const d1 = shardBindings(env).get(shardOfId(id));
  if (!d1) throw new Error(`no shard holds id ${id}`);
  return d1;
}

/** A Drizzle handle on the shard holding `id`. */
export const shardDbOf = (id: number) => createDb(shardD1Of(id));

/** `sql` (a single `count(*) as n` query) summed over every shard. */
export async function countInShards(sql: string, ...params: unknown[]): Promise<number> {
  const counts = await Promise.all(
    shardD1s().map((d1) =>
      d1
        .prepare(sql)
        .bind(...params)
        .first<{ n: number }>(),
    ),
  );
  return counts.reduce((sum, row) => sum + (row?.n ?? 0), 0);
}

/** The name of the binding (`SHARD_<n>`) of the shard holding a conversation, message or attachment id. */
export const shardBindingOf = (id: number): string => `SHARD_${shardOfId(id)}`;
