import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { shardBindings } from "../../src/db/shards";

// The same migration files as `wrangler d1 migrations apply`; applying twice is a no-op.
await applyD1Migrations(env.DIRECTORY, env.TEST_DIRECTORY_MIGRATIONS);
for (const shard of shardBindings(env).values()) await applyD1Migrations(shard, env.TEST_SHARD_MIGRATIONS);
