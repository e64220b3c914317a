// Child processes: each in its own process group (so wrangler, its workerd and esbuild die
// together), all killed when this process exits, output to a file, to memory or to our terminal.
import { type ChildProcess, execFileSync, type StdioOptions, spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { ROOT, sleep } from "./env.ts";

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Where a child's output goes: appended to `file` (stderr too, unless "ignore"), kept in memory
 * (the last 200 lines, streamed to stderr with `E2E_LOG=1`) under a label, or nowhere.
 */
export type Output = { file: string; stderr?: "file" | "ignore" } | { capture: string } | "ignore";

export interface StartOptions {
  output: Output;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** With taskset available, pin the process (and everything it starts) to this core or list. */
  cpu?: number | string;
}

const LOG_LINES_KEPT = 200;

/** A started child that leads its own process group. */
export class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  readonly logFile: string | undefined;
  readonly #lines: string[] = [];

  constructor(child: ChildProcess, output: Output) {
    this.child = child;
    this.pid = child.pid ?? -1;
    this.logFile = typeof output === "object" && "file" in output ? output.file : undefined;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", () => resolve({ code: null, signal: null }));
    });
    if (typeof output === "object" && "capture" in output) {
      const keep = (chunk: Buffer) => {
        const text = chunk.toString("utf8");
        if (process.env.E2E_LOG === "1") process.stderr.write(`[${output.capture}] ${text}`);
        this.#lines.push(...text.split("\n").filter((l) => l.trim() !== ""));
        if (this.#lines.length > LOG_LINES_KEPT) this.#lines.splice(0, this.#lines.length - LOG_LINES_KEPT);
      };
      child.stdout?.on("data", keep);
      child.stderr?.on("data", keep);
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get status(): string {
    return String(this.child.exitCode ?? this.child.signalCode);
  }

  /** Sends `sig` to the whole group; a group already gone is no error. */
  signal(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, sig);
    } catch {
      // Already gone.
    }
  }

  /** The last lines the child printed (its log file's tail, or what was captured). */
  output(lines = this.logFile ? 25 : LOG_LINES_KEPT): string {
    if (this.logFile) return tail(this.logFile, lines);
    return this.#lines.slice(-lines).join("\n");
  }

  /** Where to look for the output, for error messages. */
  describeOutput(): string {
    return this.logFile ? `log ${this.logFile}:\n${this.output()}` : `output:\n${this.output()}`;
  }
}

const running = new Set<Proc>();
const cleanups: (() => void)[] = [];
let hooked = false;

/** Kills every process group this process started, then runs the registered clean-ups (synchronous). */
export function killAll(): void {
  for (const proc of running) proc.signal("SIGKILL");
  running.clear();
  for (const fn of cleanups.splice(0)) fn();
}

/** Runs `fn` (synchronously) when this process exits or `killAll` runs: removing temporary directories. */
export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

/** SIGINT, SIGTERM and SIGHUP kill every child and exit (130 or 143); for scripts, not test runners. */
export function exitOnSignals(onSignal?: (signal: NodeJS.Signals) => void): void {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      onSignal?.(signal);
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
export function pinSelf(cpu: number): boolean {
  if (!hasTaskset) return false;
  try {
    execFileSync("taskset", ["-a", "-p", "-c", String(cpu), String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Starts a long-running process in its own process group; killed at the latest when we exit. */
export function start(cmd: string, args: string[], { output, cwd = ROOT, env = process.env, cpu }: StartOptions): Proc {
  if (!hooked) {
    hooked = true;
    process.on("exit", killAll);
  }
  const pinned = cpu !== undefined && hasTaskset;
  let fd: number | undefined;
  let stdio: StdioOptions;
  if (output === "ignore") stdio = "ignore";
  else if ("file" in output) {
    fd = openSync(output.file, "a");
    stdio = ["ignore", fd, output.stderr === "ignore" ? "ignore" : fd];
  } else stdio = ["ignore", "pipe", "pipe"];
  const child = spawn(pinned ? "taskset" : cmd, pinned ? ["-c", String(cpu), cmd, ...args] : args, {
    cwd,
    env,
    detached: true,
    stdio,
  });
  if (fd !== undefined) closeSync(fd);
  const proc = new Proc(child, output);
  running.add(proc);
  proc.exited.then(() => running.delete(proc));
  return proc;
}

/**
 * Stops a process group: `signal` (SIGTERM by default), SIGKILL after `graceMs`, then SIGKILL again
 * for stragglers in the group that outlived their parent.
 */
export async function stop(
  proc: Proc | undefined,
  { signal = "SIGTERM", graceMs = 3000 }: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<void> {
  if (!proc) return;
  if (proc.running) {
    proc.signal(signal);
    const timer = signal === "SIGKILL" ? undefined : setTimeout(() => proc.signal("SIGKILL"), graceMs);
    await proc.exited;
    clearTimeout(timer);
  }
  proc.signal("SIGKILL");
  running.delete(proc);
}

/** Runs a command to completion in its own process group; throws with its output's tail on failure. */
export async function runCommand(
  cmd: string,
  args: string[],
  { timeoutMs = 180_000, ...options }: StartOptions & { timeoutMs?: number },
): Promise<void> {
  const proc = start(cmd, args, options);
  const timer = setTimeout(() => proc.signal("SIGKILL"), timeoutMs);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  proc.signal("SIGKILL");
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal}); ${proc.describeOutput()}`);
}

/** Runs a command in the foreground (this terminal, this process group); returns its exit status. */
export function runForeground(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const result = spawnSync(cmd, args, { stdio: "inherit", env, shell: false });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

export function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** A port that was free a moment ago (the OS picks it; the small race is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** Polls `base`/health until it answers 200 (returns the ms it took), the process exits, or time runs out. */
export async function waitHealthy(
  base: string,
  proc: Proc,
  { timeoutMs, intervalMs = 200 }: { timeoutMs: number; intervalMs?: number },
): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (!proc.running) {
      throw new Error(`server exited (${proc.status}) before ${base}/health answered; ${proc.describeOutput()}`);
    }
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return Date.now() - started;
    } catch {
      // Not listening yet.
    }
    await sleep(intervalMs);
  }
  throw new Error(`${base}/health did not answer 200 within ${timeoutMs} ms; ${proc.describeOutput()}`);
}
