import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { captureOutput, freePort, killGroup, waitUntilHealthy } from "./processes.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Where the `wrangler dev` started for this run answers, e.g. `http://127.0.0.1:41234`. */
    baseUrl: string;
    /** The `wrangler deploy --dry-run` bundle that wrangler dev serves (and the workerd check reuses). */
    bundleDir: string;
  }
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const START_TIMEOUT_MS = 90_000;

const binDirs = [join(ROOT, "node_modules", ".bin"), dirname(process.execPath)];
const childEnv = {
  ...process.env,
  PATH: [...binDirs, process.env.PATH ?? ""].join(delimiter),
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  X_LOCAL_OBSERVABILITY: "false",
  WRANGLER_WRITE_LOGS: "false",
};

/** `wrangler deploy --dry-run --outdir DIR`: the Worker exactly as it would be uploaded. */
async function buildBundle(outDir: string): Promise<void> {
  const child = spawn(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", outDir], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: childEnv,
  });
  const logs = captureOutput(child, "build");
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c) => resolve(c));
  });
  if (code !== 0 || !existsSync(join(outDir, "index.js"))) {
    throw new Error(`wrangler deploy --dry-run failed (exit ${code}):\n${logs()}`);
  }
}

/**
 * A snapshot of the static-assets directory named in wrangler.toml's `[assets]`, or nothing if there
 * is none. wrangler dev reloads (dropping every socket) when a watched asset changes, and `npm test`
 * or `npm run build:web` rewrite public/dist/ at any moment; the copy keeps this run's server still.
 */
function snapshotAssets(into: string): string[] {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/^\s*#.*$/gm, "");
  const section = /^\[assets\]\s*$([\s\S]*?)(?=^\s*\[|(?![\s\S]))/m.exec(toml)?.[1];
  const directory = section && /^\s*directory\s*=\s*"([^"]+)"/m.exec(section)?.[1];
  if (!directory || !existsSync(join(ROOT, directory))) return [];
  cpSync(join(ROOT, directory), into, { recursive: true });
  return ["--assets", into];
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const port = await freePort();
  const persistDir = mkdtempSync(join(tmpdir(), "parley-e2e-"));
  const bundleDir = mkdtempSync(join(tmpdir(), "parley-e2e-bundle-"));
  const assetsDir = mkdtempSync(join(tmpdir(), "parley-e2e-assets-"));
  const cleanup = () => {
    for (const dir of [persistDir, bundleDir, assetsDir]) rmSync(dir, { recursive: true, force: true });
  };
  let assetsArgs: string[];
  try {
    assetsArgs = snapshotAssets(assetsDir);
    await buildBundle(bundleDir);
  } catch (err) {
    cleanup();
    throw err;
  }
  const child = spawn(
    process.execPath,
    [
      "scripts/dev.mjs",
      "--port",
      String(port),
      "--ip",
      "127.0.0.1",
      "--inspector-port",
      "0",
      "--persist-to",
      persistDir,
      // The suite registers dozens of users from one IP; the contract's switch for load and test runs.
      "--var",
      "RATE_LIMITS:off",
      // Serve the prebuilt bundle rather than src/: wrangler dev rebuilds and reloads (dropping every
      // socket) whenever a watched source file changes, which would break a run while someone edits.
      "--config",
      "wrangler.toml",
      "--no-bundle",
      join(bundleDir, "index.js"),
      ...assetsArgs,
    ],
    {
      cwd: ROOT,
      detached: true, // its own process group, so teardown can kill wrangler and workerd together
      stdio: ["ignore", "pipe", "pipe"],
      env: childEnv,
    },
  );
  const logs = captureOutput(child, "wrangler");
  // If vitest itself is interrupted, do not leave a server behind.
  const onExit = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", onExit);

  const baseUrl = `http://127.0.0.1:${port}`;
  const started = Date.now();
  try {
    await waitUntilHealthy(`${baseUrl}/health`, child, START_TIMEOUT_MS, logs);
  } catch (err) {
    await killGroup(child);
    cleanup();
    throw err;
  }
  if (process.env.E2E_LOG === "1") console.log(`wrangler dev ready on ${baseUrl} in ${Date.now() - started} ms`);
  project.provide("baseUrl", baseUrl);
  project.provide("bundleDir", bundleDir);

  return async () => {
    process.removeListener("exit", onExit);
    await killGroup(child);
    cleanup();
  };
}
