// `npm run dev [-- --port N --ip ADDR ...]`: a development JWT_SECRET, local D1 migrated, then wrangler dev.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";

const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_WRITE_LOGS: "false",
};

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (development JWT_SECRET)");
}

const run = (args) => {
  const result = spawnSync("wrangler", args, { stdio: "inherit", env, shell: false });
  if (result.error) throw result.error;
  return result.status ?? 1;
};

const extra = process.argv.slice(2);
const persist = extra.includes("--persist-to") ? ["--persist-to", extra[extra.indexOf("--persist-to") + 1]] : [];
const migrated = run(["d1", "migrations", "apply", "DB", "--local", ...persist]);
if (migrated !== 0) process.exit(migrated);

const defaults = [];
if (!extra.includes("--ip")) defaults.push("--ip", "127.0.0.1");
if (!extra.includes("--port")) defaults.push("--port", "8787");
process.exit(run(["dev", ...defaults, ...extra]));
