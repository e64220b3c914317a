// The servers under test: the built bundle under plain `workerd serve`, and `wrangler dev`.

import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { request } from "./http.mjs";
import { findDescendant, startProcess, stopProcess, tail } from "./procs.mjs";
import { runtimePaths, writeWorkerdConfig } from "./workerd.mjs";

const require = createRequire(import.meta.url);
export const wranglerBin = join(dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");

/** Environment for wrangler commands: quiet and offline. */
export const wranglerEnv = (extra = {}) => ({
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_WRITE_LOGS: "false",
  NO_COLOR: "1",
  ...extra,
});

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** What the suite needs from wrangler.toml, read with wrangler's own parser. */
export function readWranglerConfig(root) {
  const wrangler = require("wrangler");
  const c = wrangler.unstable_readConfig({ config: join(root, "wrangler.toml") });
  return {
    name: c.name,
    compatibilityDate: c.compatibility_date,
    compatibilityFlags: [...(c.compatibility_flags ?? [])],
    vars: { ...(c.vars ?? {}) },
    d1: (c.d1_databases ?? []).map((d) => ({
      binding: d.binding,
      id: d.preview_database_id ?? d.database_id ?? d.database_name,
    })),
    durableObjects: (c.durable_objects?.bindings ?? [])
      .filter((d) => !d.script_name)
      .map((d) => ({ name: d.name, className: d.class_name })),
    ratelimits: (c.ratelimits ?? []).map((r) => r.name),
  };
}

async function waitReady(base, child, timeoutMs) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited during start-up; log ${child.logFile}:\n${tail(child.logFile)}`);
    }
    const res = await request(base, "GET", "/health", { timeoutMs: 2000 });
    if (res.status === 200) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server not ready after ${timeoutMs} ms; log ${child.logFile}:\n${tail(child.logFile)}`);
}

/** The `wrangler deploy --dry-run` bundle under plain `workerd serve`, pinned to `cpu`. */
export class PlainWorkerd {
  kind = "workerd serve";

  constructor({ runDir, bundleFile, persistDir, wranglerConfig, vars, cpu, inspect = false }) {
    Object.assign(this, { runDir, bundleFile, persistDir, wranglerConfig, vars, cpu, inspect });
    this.starts = 0;
  }

  async start() {
    this.port = await freePort();
    const dir = join(this.runDir, "workerd");
    const configFile = writeWorkerdConfig({
      dir,
      bundleFile: this.bundleFile,
      persistDir: this.persistDir,
      port: this.port,
      wrangler: this.wranglerConfig,
      vars: this.vars,
    });
    this.starts++;
    this.inspectorPort = this.inspect ? await freePort() : undefined;
    const inspector = this.inspect ? [`--inspector-addr=127.0.0.1:${this.inspectorPort}`] : [];
    this.child = startProcess(runtimePaths().workerdBin, ["serve", "--experimental", ...inspector, configFile], {
      cwd: dir,
      cpu: this.cpu,
      logFile: join(this.runDir, `workerd-${this.starts}.log`),
    });
    this.pid = this.child.pid; // taskset execs workerd: same pid
    this.base = `http://127.0.0.1:${this.port}`;
    this.wsBase = `ws://127.0.0.1:${this.port}`;
    this.readyMs = await waitReady(this.base, this.child, 20_000);
    return this;
  }

  async stop() {
    await stopProcess(this.child);
    this.child = undefined;
  }
}

/** `wrangler dev` (miniflare's proxy in front of workerd), pinned to `cpu` with everything it starts. */
export class WranglerDev {
  kind = "wrangler dev";

  constructor({ root, runDir, persistDir, secret, cpu }) {
    Object.assign(this, { root, runDir, persistDir, secret, cpu });
  }

  async start() {
    this.port = await freePort();
    const args = [
      wranglerBin,
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--inspector-port",
      "0",
      "--persist-to",
      this.persistDir,
      "--var",
      "RATE_LIMITS:off",
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
    ];
    this.child = startProcess(process.execPath, args, {
      cwd: this.root,
      cpu: this.cpu,
      env: wranglerEnv({ JWT_SECRET: this.secret, CLOUDFLARE_INCLUDE_PROCESS_ENV: "true" }),
      logFile: join(this.runDir, "wrangler-dev.log"),
    });
    this.base = `http://127.0.0.1:${this.port}`;
    this.wsBase = `ws://127.0.0.1:${this.port}`;
    this.readyMs = await waitReady(this.base, this.child, 60_000);
    // wrangler dev is a process tree (wrangler's Node process, which also reads every structured
    // log line, and two workerd: its proxy and the Worker's runtime): bill all of it, once start-up
    // is over (it may start and replace runtimes while it settles).
    await new Promise((r) => setTimeout(r, 1500));
    await request(this.base, "GET", "/health");
    this.workerdPids = findDescendant(this.child.pid, "workerd");
    this.pid = [this.child.pid, ...findDescendant(this.child.pid)];
    if (this.workerdPids.length === 0) this.pid = undefined;
    return this;
  }

  async stop() {
    await stopProcess(this.child, 5000);
    this.child = undefined;
  }
}
