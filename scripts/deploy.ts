// `npm run deploy`: every D1 database's migrations on Cloudflare (the directory from
// migrations/directory, each SHARD_<n> from migrations/shard), then the Worker. A new shard is a
// new [[d1_databases]] block in wrangler.toml: its migrations run here before any code can place
// a conversation in it (docs/operations.md, "Adding a shard").
import { readWranglerConfig, runForeground, wranglerBin, wranglerEnv } from "../tools/harness/index.ts";

const env = wranglerEnv();
const wrangler = (args: string[]): number => runForeground(process.execPath, [wranglerBin, ...args], env);

for (const { binding } of readWranglerConfig().d1) {
  const migrated = wrangler(["d1", "migrations", "apply", binding, "--remote"]);
  if (migrated !== 0) process.exit(migrated);
}
process.exit(wrangler(["deploy"]));
