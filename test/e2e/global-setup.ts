import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildBundle, ROOT, startWranglerDev, stop } from "../../tools/harness/index.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Where the `wrangler dev` started for this run answers, e.g. `http://127.0.0.1:41234`. */
    baseUrl: string;
    /** The `wrangler deploy --dry-run` bundle that wrangler dev serves (and the workerd check reuses). */
    bundleDir: string;
  }
}

const START_TIMEOUT_MS = 90_000;

/**
 * A snapshot of the static-assets directory named in wrangler.toml's `[assets]`, or nothing if there
 * is none. wrangler dev reloads (dropping every socket) when a watched asset changes, and `npm test`
 * or `npm run build:web` rewrite public/dist/ at any moment; the copy keeps this run's server still.
 */
function snapshotAssets(into: string): string | undefined {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/^\s*#.*$/gm, "");
  const section = /^\[assets\]\s*$([\s\S]*?)(?=^\s*\[|(?![\s\S]))/m.exec(toml)?.[1];
  const directory = section && /^\s*directory\s*=\s*"([^"]+)"/m.exec(section)?.[1];
  if (!directory || !existsSync(join(ROOT, directory))) return undefined;
  cpSync(join(ROOT, directory), into, { recursive: true });
  return into;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const persistDir = mkdtempSync(join(tmpdir(), "parley-e2e-"));
  const bundleDir = mkdtempSync(join(tmpdir(), "parley-e2e-bundle-"));
  const assetsDir = mkdtempSync(join(tmpdir(), "parley-e2e-assets-"));
  const cleanup = () => {
    for (const dir of [persistDir, bundleDir, assetsDir]) rmSync(dir, { recursive: true, force: true });
  };
  const started = Date.now();
  let server: Awaited<ReturnType<typeof startWranglerDev>>;
  try {
    const assets = snapshotAssets(assetsDir);
    const bundleFile = await buildBundle(bundleDir, { output: { capture: "build" } });
    // As `npm run dev` starts it (.dev.vars, migrations), on a free port and its own storage.
    server = await startWranglerDev({
      asDev: true,
      persistDir,
      // The suite registers dozens of users from one IP; the contract's switch for load and test runs.
      vars: { RATE_LIMITS: "off" },
      // Serve the prebuilt bundle rather than src/: wrangler dev rebuilds and reloads (dropping every
      // socket) whenever a watched source file changes, which would break a run while someone edits.
      bundleFile,
      assetsDir: assets,
      output: { capture: "wrangler" },
      timeoutMs: START_TIMEOUT_MS,
    });
  } catch (err) {
    cleanup();
    throw err;
  }
  if (process.env.E2E_LOG === "1") console.log(`wrangler dev ready on ${server.base} in ${Date.now() - started} ms`);
  project.provide("baseUrl", server.base);
  project.provide("bundleDir", bundleDir);

  return async () => {
    await stop(server.proc, { graceMs: 5_000 });
    cleanup();
  };
}
