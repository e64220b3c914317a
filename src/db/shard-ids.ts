// No imports: the benchmark's seeding (Node) reads these too.

/**
 * Conversations, messages and attachments have global ids: `id % SHARD_ID_STRIDE` is the shard that
 * holds the row, so a plain positive integer in the API finds its database with no lookup. Up to
 * 4,096 shards; each can hand out 2^53 / 4,096 ≈ 2.2 × 10^12 ids.
 */
export const SHARD_ID_STRIDE = 4096;

export const shardOfId = (id: number): number => id % SHARD_ID_STRIDE;
