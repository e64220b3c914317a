// Child processes of the benchmark: each in its own process group, all killed on every exit path.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";

const running = new Set();

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** Kills every process group this run started (synchronously: also safe inside an 'exit' handler). */
export function killAll() {
  for (const child of running) killGroup(child, "SIGKILL");
  running.clear();
}

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      killAll();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
}

export const hasTaskset = (() => {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** Pins this process (all its threads) to `cpu`; returns whether it worked. */
export function pinSelf(cpu) {
  if (!hasTaskset) return false;
  try {
    execFileSync("taskset", ["-a", "-p", "-c", String(cpu), String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a long-running process in its own process group, output to `logFile`. With `cpu` set and
 * taskset available, the process (and everything it starts) is pinned to that core.
 */
export function startProcess(cmd, args, { cwd, env = process.env, cpu, logFile }) {
  hookExit();
  const pinned = cpu !== undefined && cpu !== null && hasTaskset;
  const out = openSync(logFile, "a");
  const child = spawn(pinned ? "taskset" : cmd, pinned ? ["-c", String(cpu), cmd, ...args] : args, {
    cwd,
    env,
    detached: true,
    stdio: ["ignore", out, out],
  });
  closeSync(out);
  running.add(child);
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.exited.then(() => running.delete(child));
  child.logFile = logFile;
  return child;
}

/** Stops a process group: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return;
  }
  killGroup(child, "SIGTERM");
  const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(timer);
  killGroup(child, "SIGKILL"); // stragglers in the group
  running.delete(child);
}

/** Runs a command to completion (own process group, output to `logFile`); throws with the log's tail on failure. */
export async function runCommand(cmd, args, { cwd, env = process.env, logFile, cpu, timeoutMs = 180_000 }) {
  const child = startProcess(cmd, args, { cwd, env, logFile, cpu });
  const timer = setTimeout(() => killGroup(child, "SIGKILL"), timeoutMs);
  const { code, signal } = await child.exited;
  clearTimeout(timer);
  killGroup(child, "SIGKILL");
  if (code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal}); log ${logFile}:\n${tail(logFile)}`);
  }
}

export function tail(file, lines = 25) {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** utime + stime of a process (or the sum over several), in milliseconds of CPU. */
export function cpuMs(pid) {
  if (Array.isArray(pid)) {
    // Several processes (wrangler dev): one that has exited no longer counts.
    return pid.reduce((sum, p) => {
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
export function memoryMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** Descendant pids of `pid` whose command name is `comm` (any name if `comm` is undefined). */
export function findDescendant(pid, comm) {
  const parents = new Map();
  const names = new Map();
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
  const isDescendant = (p) => {
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
export async function waitIdle(pid, { maxMs = 20_000, windowMs = 400, busyFraction = 0.08 } = {}) {
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
export function machineCpu() {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + (line[4] ?? 0);
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busyMs: ((total - idle) * 1000) / clockTicks, at: Date.now() };
}

/** Open file descriptors of a process. */
export function openFiles(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A process's soft limit on open files. */
export function fileLimit(pid) {
  const limits = readFileSync(`/proc/${pid}/limits`, "utf8");
  return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]) || Infinity;
}
