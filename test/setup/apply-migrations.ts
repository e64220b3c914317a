import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// The same migration files as `wrangler d1 migrations apply`; applying twice is a no-op.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
