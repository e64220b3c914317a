// The servers the benchmark measures, over the harness: the built bundle under plain `workerd serve`
// (restartable, pinned, optionally with its inspector), and `wrangler dev` for comparison.
import { join } from "node:path";
import {
  freePort,
  type Proc,
  startWorkerd,
  startWranglerDev,
  stop,
  type WranglerSubset,
  wranglerEnv,
} from "../../tools/harness/index.ts";
import { request } from "./http.ts";
import { findDescendant } from "./system.ts";

/** What a scenario needs of the server it measures. */
export interface BenchServer {
  kind: string;
  base: string;
  wsBase: string;
  /** The process(es) whose CPU is the server's; undefined when they could not be found. */
  pid: number | number[] | undefined;
  inspectorPort?: number;
  bundleFile?: string;
}

/** The `wrangler deploy --dry-run` bundle under plain `workerd serve`, pinned to `cpu`. */
export class PlainWorkerd implements BenchServer {
  readonly kind = "workerd serve";
  readonly options: {
    runDir: string;
    bundleFile: string;
    persistDir: string;
    wranglerConfig: WranglerSubset;
    vars: Record<string, string>;
    cpu?: number;
    inspect?: boolean;
    /** V8 flags for workerd's isolates (`--perf` passes V8's jitdump flags). */
    v8Flags?: string[];
    /** Names its logs (workerd-LABEL-n.log) when several servers share a run directory. */
    label?: string;
  };
  readonly bundleFile: string;
  starts = 0;
  base = "";
  wsBase = "";
  pid: number | undefined;
  inspectorPort: number | undefined;
  readyMs = 0;
  proc: Proc | undefined;

  constructor(options: PlainWorkerd["options"]) {
    this.options = options;
    this.bundleFile = options.bundleFile;
  }

  /**
   * Another server on the same bundle and state with some vars overridden (and D1 bindings added):
   * for scenarios that need a configuration of their own, started fresh.
   */
  with(
    label: string,
    { vars = {}, d1 = [] }: { vars?: Record<string, string>; d1?: WranglerSubset["d1"] },
  ): PlainWorkerd {
    const o = this.options;
    return new PlainWorkerd({
      ...o,
      label,
      vars: { ...o.vars, ...vars },
      wranglerConfig: { ...o.wranglerConfig, d1: [...o.wranglerConfig.d1, ...d1] },
    });
  }

  async start(): Promise<this> {
    const o = this.options;
    this.starts++;
    this.inspectorPort = o.inspect ? await freePort() : undefined;
    const server = await startWorkerd({
      dir: join(o.runDir, "workerd"),
      bundleFile: o.bundleFile,
      persistDir: o.persistDir,
      wrangler: o.wranglerConfig,
      vars: o.vars,
      inspectorPort: this.inspectorPort,
      v8Flags: o.v8Flags,
      cpu: o.cpu,
      output: { file: join(o.runDir, `workerd-${o.label ? `${o.label}-` : ""}${this.starts}.log`) },
    });
    this.proc = server.proc;
    this.pid = server.proc.pid; // taskset execs workerd: same pid
    this.base = server.base;
    this.wsBase = `ws://127.0.0.1:${server.port}`;
    this.readyMs = server.readyMs;
    return this;
  }

  async stop(): Promise<void> {
    await stop(this.proc);
    this.proc = undefined;
  }
}

/** `wrangler dev` (miniflare's proxy in front of workerd), pinned to `cpu` with everything it starts. */
export class WranglerDev implements BenchServer {
  readonly kind = "wrangler dev";
  readonly options: {
    runDir: string;
    persistDir: string;
    secret: string;
    cpu?: number;
    /** Another wrangler config (the attachment floor Worker); default wrangler.toml. */
    config?: string;
    /** Extra environment variables the Worker sees (VAPID keys and the like). */
    env?: Record<string, string>;
    log?: string;
  };
  base = "";
  wsBase = "";
  pid: number[] | undefined;
  workerdPids: number[] = [];
  readyMs = 0;
  proc: Proc | undefined;

  constructor(options: WranglerDev["options"]) {
    this.options = options;
  }

  async start(): Promise<this> {
    const o = this.options;
    const server = await startWranglerDev({
      persistDir: o.persistDir,
      vars: { RATE_LIMITS: "off" },
      extraArgs: [
        "--show-interactive-dev-session=false",
        "--log-level",
        "warn",
        ...(o.config ? ["--config", o.config] : []),
      ],
      cpu: o.cpu,
      env: wranglerEnv({ NO_COLOR: "1", JWT_SECRET: o.secret, CLOUDFLARE_INCLUDE_PROCESS_ENV: "true", ...o.env }),
      output: { file: join(o.runDir, o.log ?? "wrangler-dev.log") },
      timeoutMs: 60_000,
      healthIntervalMs: 100,
    });
    this.proc = server.proc;
    this.base = server.base;
    this.wsBase = `ws://127.0.0.1:${server.port}`;
    this.readyMs = server.readyMs;
    // wrangler dev is a process tree (wrangler's Node process, which also reads every structured
    // log line, and two workerd: its proxy and the Worker's runtime): bill all of it, once start-up
    // is over (it may start and replace runtimes while it settles).
    await new Promise((r) => setTimeout(r, 1500));
    await request(this.base, "GET", "/health");
    this.workerdPids = findDescendant(server.proc.pid, "workerd");
    this.pid = [server.proc.pid, ...findDescendant(server.proc.pid)];
    if (this.workerdPids.length === 0) this.pid = undefined;
    return this;
  }

  async stop(): Promise<void> {
    await stop(this.proc, { graceMs: 5000 });
    this.proc = undefined;
  }
}
