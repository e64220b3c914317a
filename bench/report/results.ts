// The results of a run as one JSON document, written to bench/results/: `latest.json` (the figures
// the repository keeps) only with `--save`, otherwise `last-run.json`, which git ignores, so that
// running the benchmark does not dirty the checkout.
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, relative } from "node:path";
import { ROOT } from "../../tools/harness/index.ts";
import { round } from "../lib/http.ts";
import type { ProfileRecord, RunContext } from "../run/context.ts";
import type { machine, versions } from "../run/machine.ts";
import type { Parameters } from "../run/options.ts";
import type { PerfRecord } from "../run/perf-record.ts";
import { TARGETS, table } from "./table.ts";
import type { Row, Scenarios } from "./types.ts";

export interface Results {
  date: string;
  mode: "quick" | "full";
  server: string;
  bundle: string;
  storage: string;
  serverPinnedToCore: number | null;
  loadGeneratorPinnedToCore: number | null;
  durationS: number;
  machine: ReturnType<typeof machine> & { loadAverageAtEnd: number[] };
  versions: ReturnType<typeof versions>;
  parameters: Parameters & { ciphertextBytes: number; rateLimits: string };
  targets: typeof TARGETS;
  scenarios: Scenarios;
  notes: string[];
  profiled?: string;
  profiles?: Record<string, Record<string, ProfileRecord>>;
  perf?: Record<string, PerfRecord>;
  table: Row[];
}

export function collectResults(
  ctx: RunContext,
  mach: ReturnType<typeof machine>,
  vers: ReturnType<typeof versions>,
): Results {
  const { options } = ctx;
  const base = {
    date: new Date().toISOString(),
    mode: options.quick ? "quick" : "full",
    server: "workerd serve (the wrangler deploy --dry-run bundle; D1 through miniflare's D1DatabaseObject)",
    bundle: options.bundleOverride ?? "built by this run",
    storage: ctx.onDisk ? `disk (${os.tmpdir()})` : "tmpfs (/dev/shm)",
    serverPinnedToCore: ctx.serverCpu ?? null,
    loadGeneratorPinnedToCore: ctx.generatorPinned ? 1 : null,
    durationS: round((Date.now() - ctx.t0) / 1000, 1),
    machine: { ...mach, loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)) },
    versions: vers,
    parameters: { ...ctx.P, ciphertextBytes: 256, rateLimits: "off" },
    targets: TARGETS,
    scenarios: ctx.scenarios,
    notes: ctx.notes,
  } satisfies Partial<Results>;
  const profiled = options.profiling
    ? { profiled: "yes: these figures were taken with the CPU profiler attached", profiles: ctx.profiles }
    : {};
  const perf = options.perf
    ? {
        profiled: "yes: recorded with perf and V8's jitdump, which cost the server some CPU",
        perf: ctx.perf,
      }
    : {};
  return { ...base, mode: base.mode as Results["mode"], ...profiled, ...perf, table: table(base.scenarios) };
}

/** Writes the results; returns the file's path relative to the current directory. */
export function writeResults(results: Results, save: boolean): string {
  const outDir = join(ROOT, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, save ? "latest.json" : "last-run.json");
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  return relative(process.cwd(), outFile);
}
