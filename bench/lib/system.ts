// What the benchmark reads of processes and the machine from /proc: CPU time, memory, descendants,
// open files, and how busy everything else is.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** utime + stime of a process (or the sum over several), in milliseconds of CPU. */
export function cpuMs(pid: number | number[]): number {
  if (Array.isArray(pid)) {
    // Several processes (wrangler dev): one that has exited no longer counts.
    return pid.reduce((sum: number, p: number) => {
      try {
        return sum + cpuMs(p);
      } catch {
        return sum;
      }
    }, 0);
  }
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / clockTicks;
}

const clockTicks = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident set size (and its peak) of a process, in MiB. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** Descendant pids of `pid` whose command name is `comm` (any name if `comm` is undefined). */
export function findDescendant(pid: number, comm?: string): number[] {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      names.set(Number(entry), stat.slice(stat.indexOf("(") + 1, close));
      parents.set(Number(entry), Number(stat.slice(close + 2).split(" ")[1]));
    } catch {
      // Exited meanwhile.
    }
  }
  const isDescendant = (p: number) => {
    for (let q = parents.get(p); q !== undefined && q > 1; q = parents.get(q)) if (q === pid) return true;
    return false;
  };
  return [...names].filter(([p, name]) => (comm === undefined || name === comm) && isDescendant(p)).map(([p]) => p);
}

export const procAvailable = existsSync("/proc/self/stat");

/**
 * Waits until `pid` is idle (under `busyFraction` of a core over a `windowMs` window), at most
 * `maxMs`; returns how long that took and whether it got there. Work a scenario left behind
 * (waitUntil broadcasts, inbox forwards) must not be billed to the next one.
 */
export interface Settle {
  ms: number;
  idle: boolean;
  busy?: number;
}

export async function waitIdle(
  pid: number | number[],
  { maxMs = 20_000, windowMs = 400, busyFraction = 0.08 } = {},
): Promise<Settle> {
  const started = Date.now();
  let last = cpuMs(pid);
  for (;;) {
    await new Promise((r) => setTimeout(r, windowMs));
    const now = cpuMs(pid);
    const busy = (now - last) / windowMs;
    last = now;
    if (busy < busyFraction) return { ms: Date.now() - started, idle: true };
    if (Date.now() - started > maxMs) return { ms: Date.now() - started, idle: false, busy: Number(busy.toFixed(2)) };
  }
}

/** CPU (in cores) used on the whole machine by processes other than `ours`, over an interval: noise. */
export function machineCpu(): { busyMs: number; at: number } {
  const line = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busyMs: ((total - idle) * 1000) / clockTicks, at: Date.now() };
}

/** Open file descriptors of a process. */
export function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A process's soft limit on open files. */
export function fileLimit(pid: number): number {
  const limits = readFileSync(`/proc/${pid}/limits`, "utf8");
  return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]) || Infinity;
}
