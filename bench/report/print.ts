// What a run prints: the table, and the top functions of each CPU profile.
import type { ProfileRecord } from "../run/context.ts";
import type { PerfRecord } from "../run/perf-record.ts";
import type { Results } from "./results.ts";

export function printTable(r: Results): void {
  const cols = [
    ["scenario", "scenario"],
    ["result", "result"],
    ["p50", "p50 ms"],
    ["p90", "p90"],
    ["p99", "p99"],
    ["p999", "p99.9"],
    ["max", "max"],
    ["errors", "errors"],
    ["dropped", "dropped"],
    ["target", "target"],
    ["met", "met"],
    ["others", "others"],
  ] as const;
  const widths = cols.map(([k, h]) => Math.max(h.length, ...r.table.map((row) => String(row[k]).length)));
  const line = (cells: readonly string[] | number[]) =>
    `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  const out = [
    "",
    `Parley bench (${r.mode}), ${r.date}, server: ${r.server}`,
    `machine: ${r.machine.cpuModel}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB; load avg ${r.machine.loadAverageAtStart.join(" ")} → ${r.machine.loadAverageAtEnd.join(" ")}`,
    `versions: node ${r.versions.node}, wrangler ${r.versions.wrangler}, workerd ${r.versions.workerd}; server core ${r.serverPinnedToCore ?? "any"}, load generator core ${r.loadGeneratorPinnedToCore ?? "any"}; state on ${r.storage}`,
    "latency columns: ms; fan-out/capacity/history from the intended send time (open loop; fan-out: to the frame on the last socket); ceiling/write closed loop",
    "others: CPU cores used by other processes on this machine during the scenario (noise; the server has one core)",
    "",
    line(cols.map(([, h]) => h)),
    line(widths.map((w) => "-".repeat(w))),
    ...r.table.map((row) => line(cols.map(([k]) => row[k]))),
    "",
    ...r.notes.map((n) => `note: ${n}`),
  ];
  console.log(out.join("\n"));
}

export function printProfiles(profiles: Record<string, Record<string, ProfileRecord>>): void {
  for (const [name, byTarget] of Object.entries(profiles)) {
    for (const [target, p] of Object.entries(byTarget)) {
      console.log(`\nprofile ${name} / ${target}: ${p.busyMs} ms of JavaScript (${p.file})`);
      console.log("  self ms  total ms  function");
      for (const row of p.top.slice(0, 15))
        console.log(`  ${String(row.selfMs).padStart(7)}  ${String(row.totalMs).padStart(8)}  ${row.function}`);
    }
  }
}

const n = (x: number | null | undefined, digits = 3): string =>
  x === null || x === undefined ? "–" : x.toLocaleString("en", { maximumFractionDigits: digits });

export function printPerf(records: Record<string, PerfRecord>): void {
  for (const [name, p] of Object.entries(records)) {
    const per = p.unit ?? "scenario";
    console.log(
      `\nperf ${name}: ${n(p.samples, 0)} samples × ${n(p.periodNs / 1e6)} ms = ${n(p.perfCpuMs, 0)} ms of workerd CPU` +
        (p.units ? ` for ${n(p.units, 0)} ${per}s` : ""),
    );
    if (p.units)
      console.log(
        `  CPU per ${per}: perf ${n(p.perfCpuPerUnitMs)} ms; /proc over the same window ${n(p.procCpuPerUnitMs)} ms ` +
          `(perf/proc ${n(p.perfToProc)}); the scenario's own figure ${n(p.scenarioCpuPerUnitMs)} ms`,
      );
    else console.log(`  /proc over the same window: ${n(p.procCpuMs, 0)} ms (perf/proc ${n(p.perfToProc)})`);
    const width = Math.max(6, ...p.modules.map((m) => m.module.length));
    const unit = p.units ? `ms/${per}` : "ms";
    console.log(`  ${"module".padEnd(width)}  ${`self ${unit}`.padStart(18)}  ${`charged ${unit}`.padStart(21)}`);
    for (const m of p.modules) {
      const [self, charged] = p.units ? [m.selfMsPerUnit, m.chargedMsPerUnit] : [m.selfMs, m.chargedMs];
      if ((self ?? 0) === 0 && (charged ?? 0) === 0) continue;
      console.log(`  ${m.module.padEnd(width)}  ${n(self).padStart(18)}  ${n(charged).padStart(21)}`);
    }
    console.log(
      `  (self: the sampled frame's module; charged: the innermost JavaScript module on the stack; data ${p.data})`,
    );
  }
}
