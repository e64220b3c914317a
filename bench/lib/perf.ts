// `--perf`: Linux `perf` over the workerd process, with V8's jitdump so that JavaScript frames have
// names and source positions. The inspector's profiler (`--profile`) sees one isolate at a time,
// adds up to more than the wall time on one thread and costs the server about half again; perf
// samples the whole process (every isolate, workerd's own C++ and Rust, the kernel) by CPU time.
import { execFileSync, spawnSync } from "node:child_process";
import { constants, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { Socket } from "node:net";
import { join } from "node:path";
import { type Proc, runCommand, start, stop } from "../../tools/harness/index.ts";
import { cpuMs } from "./system.ts";

/** What workerd's V8 needs for perf: a jitdump file, and interpreted frames on the native stack. */
export const PERF_V8_FLAGS = ["--perf-prof", "--interpreted-frames-native-stack"];

/** One sample per 0.5 ms of CPU (a software clock: no PMU needed, so it works in VMs too). */
export const PERIOD_NS = 500_000;
const EVENT = ["-e", "cpu-clock", "-c", String(PERIOD_NS)];

export const perfBin = existsSync("/usr/bin/perf") ? "/usr/bin/perf" : "perf";

/** perf caches every binary it sees under $HOME/.debug (workerd alone is 160 MB): keep that in the run. */
const perfEnv = (dir: string): NodeJS.ProcessEnv => ({ ...process.env, HOME: join(dir, "home") });

function paranoid(): string {
  try {
    return readFileSync("/proc/sys/kernel/perf_event_paranoid", "utf8").trim();
  } catch {
    return "unknown";
  }
}

/**
 * Records a second of nothing the way the scenarios will be recorded; throws a message that says
 * what is missing if perf cannot do it here. Returns perf's version and any caveat.
 */
export function checkPerf(dir: string): { version: string; notes: string[] } {
  mkdirSync(join(dir, "home"), { recursive: true });
  const version = spawnSync(perfBin, ["--version"], { encoding: "utf8" });
  if (version.status !== 0)
    throw new Error(`--perf needs Linux perf (${perfBin}): ${version.error?.message ?? version.stderr}`.trim());
  const probe = spawnSync(
    perfBin,
    ["record", ...EVENT, "-k", "mono", "-g", "-N", "-o", join(dir, "probe.data"), "--", "true"],
    { encoding: "utf8", env: perfEnv(dir) },
  );
  const level = paranoid();
  if (probe.status !== 0) {
    throw new Error(
      `--perf: perf cannot record on this machine (kernel.perf_event_paranoid = ${level}, uid ${process.getuid?.()}). ` +
        "It needs root or CAP_PERFMON, or kernel.perf_event_paranoid ≤ 1 (sudo sysctl kernel.perf_event_paranoid=1); " +
        `in a container, perf_event_open allowed by its seccomp profile. perf said: ${probe.stderr.trim().slice(0, 600)}`,
    );
  }
  const notes: string[] = [];
  if (process.getuid?.() !== 0 && Number(level) >= 2)
    notes.push(
      `perf: kernel.perf_event_paranoid = ${level} without root: kernel time is not sampled, so perf's total will fall short of /proc's`,
    );
  return { version: version.stdout.trim(), notes };
}

/**
 * A FIFO as a one-way socket, opened read-write and non-blocking so that opening it never waits for
 * perf (and a perf that failed cannot leave us blocked); one-way, or we would read our own commands.
 */
function fifo(path: string, direction: "write" | "read"): Socket {
  execFileSync("mkfifo", [path]);
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  return new Socket({ fd, readable: direction === "read", writable: direction === "write" });
}

/**
 * `perf record -p PID` started with its events off and switched on and off through its control
 * FIFO, so that the samples cover the scenario and nothing else; /proc's CPU time for the process is
 * read at the same two moments to check perf's total against.
 */
export class PerfRecording {
  readonly dataFile: string;
  private readonly proc: Proc;
  private readonly ctl: Socket;
  private readonly ack: Socket;
  private readonly pid: number;
  private cpu0 = 0;

  private constructor(dataFile: string, proc: Proc, ctl: Socket, ack: Socket, pid: number) {
    this.dataFile = dataFile;
    this.proc = proc;
    this.ctl = ctl;
    this.ack = ack;
    this.pid = pid;
  }

  static async start(pid: number, dir: string, name: string): Promise<PerfRecording> {
    mkdirSync(join(dir, "home"), { recursive: true });
    const dataFile = join(dir, `${name}.data`);
    const ctl = fifo(join(dir, `${name}.ctl`), "write");
    const ack = fifo(join(dir, `${name}.ack`), "read");
    const args = ["record", ...EVENT, "-k", "mono", "-g", "-N", "-D", "-1"];
    args.push("--control", `fifo:${join(dir, `${name}.ctl`)},${join(dir, `${name}.ack`)}`, "-p", String(pid));
    const proc = start(perfBin, [...args, "-o", dataFile], {
      output: { file: join(dir, `${name}.log`) },
      env: perfEnv(dir),
    });
    const rec = new PerfRecording(dataFile, proc, ctl, ack, pid);
    await rec.command("enable");
    rec.cpu0 = cpuMs(pid);
    return rec;
  }

  private command(what: "enable" | "disable"): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`perf did not acknowledge "${what}" within 30 s`)), 30_000);
      const done = () => {
        clearTimeout(timer);
        this.ack.off("data", onAck);
      };
      const fail = (err: Error) => {
        done();
        reject(new Error(`${err.message}; ${this.proc.describeOutput()}`));
      };
      const onAck = (data: Buffer) => {
        if (!data.toString().includes("ack")) return;
        done();
        resolve();
      };
      this.ack.on("data", onAck);
      this.proc.exited.then(() => fail(new Error(`perf record exited (${this.proc.status}) before "${what}"`)));
      this.ctl.write(`${what}\n`);
    });
  }

  /** Stops sampling and perf; returns the data file and the CPU /proc saw meanwhile. */
  async stop(): Promise<{ dataFile: string; procCpuMs: number }> {
    await this.command("disable");
    const procCpuMs = cpuMs(this.pid) - this.cpu0;
    this.proc.signal("SIGINT");
    const timer = setTimeout(() => this.proc.signal("SIGKILL"), 30_000);
    const exit = await this.proc.exited;
    clearTimeout(timer);
    await stop(this.proc);
    this.ctl.destroy();
    this.ack.destroy();
    // perf record re-raises the SIGINT it stopped on once its data is written.
    if (exit.code !== 0 && exit.signal !== "SIGINT")
      throw new Error(`perf record failed (${exit.code ?? exit.signal}); ${this.proc.describeOutput()}`);
    return { dataFile: this.dataFile, procCpuMs };
  }

  /** Ends the recording without looking at it (the scenario failed). */
  async abandon(): Promise<void> {
    await stop(this.proc, { signal: "SIGINT" });
    this.ctl.destroy();
    this.ack.destroy();
  }
}

/**
 * `perf inject --jit` (JavaScript frames become symbols of small ELF files made from the jitdump)
 * then `perf script` into a text file: one block per sample, its period, then its frames, leaf first.
 */
export async function samplesText(dataFile: string, dir: string): Promise<string> {
  const env = perfEnv(dir);
  const jitFile = dataFile.replace(/\.data$/, ".jit.data");
  const log = { file: `${dataFile}.inject.log` };
  await runCommand(perfBin, ["inject", "--jit", "-i", dataFile, "-o", jitFile], { output: log, env, cwd: dir });
  const text = `${dataFile}.txt`;
  await runCommand(perfBin, ["script", "-i", jitFile, "-F", "period,ip,sym,dso"], {
    output: { file: text, stderr: "ignore" },
    env,
    cwd: dir,
  });
  return text;
}
