// `--perf` around one scenario: perf records workerd while the scenario runs, then its samples are
// summed by module and divided by the scenario's messages (or requests), beside /proc's CPU time
// over the same window and the scenario's own CPU-per-message figure, which perf's must match.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { round } from "../lib/http.ts";
import { PerfRecording, samplesText } from "../lib/perf.ts";
import { type PerfSummary, summarisePerf } from "../lib/perf-modules.ts";
import { bundleModules } from "../lib/profiler.ts";
import type { BenchServer } from "../lib/servers.ts";
import type { RunContext } from "./context.ts";

export interface PerfRecord extends PerfSummary {
  unit: string | null;
  units: number | null;
  /** /proc's utime + stime of workerd between the same two moments. */
  procCpuMs: number;
  perfToProc: number | null;
  perfCpuPerUnitMs: number | null;
  procCpuPerUnitMs: number | null;
  /** The scenario's own figure (`cost`): CPU over its load run ÷ what it stored. */
  scenarioCpuPerUnitMs: number | null;
  /** `perf report -i` this (kept with --keep; the jitted code it names lives beside the server). */
  data: string;
}

export async function startPerf(
  ctx: RunContext,
  name: string,
  server: BenchServer | undefined,
): Promise<{ stop(): Promise<(result: object) => Promise<void>>; abandon(): Promise<void> } | undefined> {
  const pid = server?.pid;
  if (!ctx.options.perf || typeof pid !== "number") return undefined;
  const dir = join(ctx.runDir, "perf");
  const recording = await PerfRecording.start(pid, dir, name);
  return {
    abandon: () => recording.abandon(),
    async stop() {
      const { dataFile, procCpuMs } = await recording.stop();
      return async (result) => {
        const r = result as { ok?: number; serverCpuPerRequestMs?: number | null };
        const units = typeof r.ok === "number" && r.ok > 0 ? r.ok : null;
        const moduleOf = bundleModules(server?.bundleFile ?? "");
        const text = await samplesText(dataFile, dir);
        const summary = await summarisePerf(text, moduleOf, units);
        rmSync(text); // tens of MB on tmpfs; `perf script -i` on the .jit.data makes it again
        const per = (x: number) => (units ? round(x / units, 3) : null);
        ctx.perf[name] = {
          ...summary,
          unit: units ? (name === "write" ? "message" : "request") : null,
          units,
          procCpuMs: round(procCpuMs, 1),
          perfToProc: procCpuMs > 0 ? round(summary.perfCpuMs / procCpuMs, 3) : null,
          perfCpuPerUnitMs: per(summary.perfCpuMs),
          procCpuPerUnitMs: per(procCpuMs),
          scenarioCpuPerUnitMs: r.serverCpuPerRequestMs ?? null,
          data: dataFile.replace(/\.data$/, ".jit.data"),
        };
      };
    },
  };
}
