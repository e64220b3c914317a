// One benchmark run: its options and parameters, where it keeps its state, which cores it uses,
// and what it has measured so far. `attempt` runs one scenario and records it.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, relative } from "node:path";
import { hasTaskset, pinSelf, ROOT } from "../../tools/harness/index.ts";
import { round } from "../lib/http.ts";
import {
  bundleModules,
  type CpuProfile,
  type ProfileSummary,
  startProfiling,
  summariseProfile,
} from "../lib/profiler.ts";
import type { BenchServer } from "../lib/servers.ts";
import { cpuMs, machineCpu, type Settle, waitIdle } from "../lib/system.ts";
import type { Scenarios } from "../report/types.ts";
import { cores } from "./machine.ts";
import { type Options, type Parameters, parameters, runs } from "./options.ts";
import { type PerfRecord, startPerf } from "./perf-record.ts";

export interface ProfileRecord {
  file: string;
  busyMs: number;
  top: ProfileSummary["top"];
  totals: ProfileSummary["totals"];
}

export interface RunContext {
  options: Options;
  P: Parameters;
  t0: number;
  runDir: string;
  persistDir: string;
  secret: string;
  /** Server on core 0, this process (the load generator) on core 1, when taskset and two cores exist. */
  serverCpu: number | undefined;
  generatorPinned: boolean;
  /** For set-up commands: every core (this process is pinned, and children inherit that). */
  allCores: string | undefined;
  onDisk: boolean;
  scenarios: Scenarios;
  notes: string[];
  profiles: Record<string, Record<string, ProfileRecord>>;
  perf: Record<string, PerfRecord>;
  log(msg: string): void;
  runs(name: string): boolean;
}

export function createContext(options: Options): RunContext {
  const t0 = Date.now();
  const serverCpu = cores >= 2 && hasTaskset ? 0 : undefined;
  const generatorPinned = cores >= 2 && hasTaskset ? pinSelf(1) : false;
  // Server state on tmpfs by default: workerd fsyncs every Durable Object / D1 commit on its one
  // thread, and this VM's disk takes ~3-6 ms per fsync, which would swamp what Parley's code costs.
  const onDisk = options.onDisk || !existsSync("/dev/shm");
  const runDir = mkdtempSync(join(onDisk ? os.tmpdir() : "/dev/shm", "parley-bench-"));
  const persistDir = join(runDir, "persist");
  mkdirSync(persistDir, { recursive: true });
  return {
    options,
    P: parameters(options.quick),
    t0,
    runDir,
    persistDir,
    secret: randomBytes(32).toString("hex"),
    serverCpu,
    generatorPinned,
    allCores: hasTaskset ? `0-${cores - 1}` : undefined,
    onDisk,
    scenarios: {},
    notes: [],
    profiles: {},
    perf: {},
    log: (msg) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`),
    runs: (name) => runs(options, name),
  };
}

/**
 * Runs one scenario: first waits for the server to be idle (what the previous one left behind is
 * not billed to this one), then records how much CPU other processes on the machine used meanwhile.
 */
export async function attempt<T extends object>(
  ctx: RunContext,
  name: keyof Scenarios,
  fn: () => Promise<T>,
  server: BenchServer | undefined,
): Promise<T | undefined> {
  if (!ctx.runs(name)) return undefined;
  const record = (value: unknown) => ((ctx.scenarios as Record<string, unknown>)[name] = value);
  let settle: Settle | undefined;
  const pid = server?.pid;
  if (pid) settle = await waitIdle(pid, { maxMs: ctx.options.quick ? 8000 : 30_000 });
  ctx.log(
    `${name}…${settle && settle.ms > 1000 ? ` (server busy ${(settle.ms / 1000).toFixed(1)} s with earlier work first)` : ""}`,
  );
  const profiler =
    ctx.options.profiling && server?.inspectorPort ? await startProfiling(server.inspectorPort) : undefined;
  let perf: Awaited<ReturnType<typeof startPerf>>;
  const failed = async (e: unknown) => {
    const err = e as Error;
    await perf?.abandon();
    ctx.log(`${name} FAILED: ${err.stack ?? err}`);
    record({ error: String(err.message ?? err).slice(0, 2000) });
    return undefined;
  };
  try {
    perf = await startPerf(ctx, name, server);
  } catch (e) {
    return failed(e);
  }
  const m0 = machineCpu();
  const s0 = pid ? cpuMs(pid) : 0;
  const own0 = process.cpuUsage();
  try {
    const result = await fn();
    const summarisePerf = await perf?.stop();
    if (profiler) await saveProfiles(ctx, name, await profiler.stop(), server?.bundleFile ?? "");
    const m1 = machineCpu();
    const own = process.cpuUsage(own0);
    const serverMs = pid && server?.pid === pid ? cpuMs(pid) - s0 : 0;
    const wall = m1.at - m0.at;
    const context = {
      wallS: round(wall / 1000, 1),
      settleBefore: settle ?? null,
      serverCores: round(serverMs / wall, 2),
      loadGeneratorCores: round((own.user + own.system) / 1000 / wall, 2),
      otherProcessesCores: round((m1.busyMs - m0.busyMs - serverMs - (own.user + own.system) / 1000) / wall, 2),
    };
    record(Object.assign(result, { context }));
    // After the figures: perf's post-processing takes seconds of CPU on the load generator's core.
    await summarisePerf?.(result);
    return result;
  } catch (e) {
    return failed(e);
  }
}

async function saveProfiles(
  ctx: RunContext,
  name: string,
  byTarget: Record<string, CpuProfile>,
  bundleFile: string,
): Promise<void> {
  const dir = join(ROOT, "bench", "results", "profiles");
  mkdirSync(dir, { recursive: true });
  const moduleOf = bundleModules(bundleFile);
  const byName: Record<string, ProfileRecord> = {};
  ctx.profiles[name] = byName;
  for (const [target, profile] of Object.entries(byTarget)) {
    const file = join(dir, `${name}-${target.replaceAll(":", "_")}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const summary = summariseProfile(profile, (frame) =>
      frame.url.endsWith("worker.js") ? moduleOf(frame.lineNumber) : "",
    );
    byName[target] = {
      file: relative(ROOT, file),
      busyMs: summary.busyMs,
      top: summary.top.slice(0, 25),
      totals: summary.totals.slice(0, 40),
    };
  }
}
