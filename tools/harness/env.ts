// Where things are, and the environment every wrangler and workerd child gets: quiet and offline.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);

/** The checkout's root directory, with a trailing slash. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** wrangler's own entry point, run with this process's Node (the project's Node 24 under `npm run`). */
export const wranglerBin = join(dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");

/** The switches that keep wrangler quiet and offline (see /work/shared/notes/stack.md). */
export const QUIET_WRANGLER = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_WRITE_LOGS: "false",
} as const;

/** This process's environment plus the quiet switches and `extra`. */
export function wranglerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...QUIET_WRANGLER, ...extra };
}

/**
 * For servers under test (e2e, soak): also wrangler's local tracing off, and the project's
 * node_modules/.bin and Node first on PATH.
 */
export function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const binDirs = [join(ROOT, "node_modules", ".bin"), dirname(process.execPath)];
  return wranglerEnv({
    PATH: [...binDirs, process.env.PATH ?? ""].join(delimiter),
    X_LOCAL_OBSERVABILITY: "false",
    ...extra,
  });
}

/** Node ≥ 22.12, which wrangler needs; exits with a hint otherwise. */
export function requireModernNode(what: string): void {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major < 22 || (major === 22 && minor < 12)) {
    console.error(
      `${what}: Node ${process.versions.node} is too old for wrangler; run it with \`npm run ${what}\` (uses the project's Node 24).`,
    );
    process.exit(1);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The development VAPID pair of .dev.vars.example: a Worker served outside `wrangler dev` (plain
 * workerd for the benchmark and the compression check) needs it to pass its configuration check.
 */
export function developmentVapid(): Record<string, string> {
  const lines = readFileSync(join(ROOT, ".dev.vars.example"), "utf8").split("\n");
  return Object.fromEntries(
    lines
      .filter((line) => /^VAPID_[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1).trim()]),
  );
}
