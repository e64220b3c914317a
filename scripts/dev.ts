// `npm run dev [-- --port N --ip ADDR ...]`: a development JWT_SECRET, local D1 migrated, then wrangler dev.
import { ensureDevVars, migrateCommands, runForeground, wranglerBin, wranglerEnv } from "../tools/harness/index.ts";

const env = wranglerEnv();
const wrangler = (args: string[]): number => runForeground(process.execPath, [wranglerBin, ...args], env);

ensureDevVars();
const extra = process.argv.slice(2);
const persistAt = extra.indexOf("--persist-to");
for (const args of migrateCommands(persistAt >= 0 ? extra[persistAt + 1] : undefined)) {
  const migrated = wrangler(args);
  if (migrated !== 0) process.exit(migrated);
}

const defaults: string[] = [];
if (!extra.includes("--ip")) defaults.push("--ip", "127.0.0.1");
if (!extra.includes("--port")) defaults.push("--port", "8787");
process.exit(wrangler(["dev", ...defaults, ...extra]));
