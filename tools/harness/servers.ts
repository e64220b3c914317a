// The servers under test: `wrangler dev` (as `npm run dev` starts it, or bare for the benchmark),
// and the deployable bundle under plain `workerd serve`. Also the wrangler commands around them.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serverEnv, wranglerBin } from "./env.ts";
import { freePort, type Output, type Proc, runCommand, start, stop, waitHealthy } from "./processes.ts";
import { readWranglerConfig, runtimePaths, type WranglerSubset, writeWorkerdConfig } from "./workerd.ts";

export interface Server {
  proc: Proc;
  port: number;
  /** e.g. `http://127.0.0.1:41234` */
  base: string;
  readyMs: number;
}

/** Creates .dev.vars (a development-only JWT_SECRET) from .dev.vars.example when there is none. */
export function ensureDevVars(root: string = ROOT): void {
  if (existsSync(join(root, ".dev.vars"))) return;
  copyFileSync(join(root, ".dev.vars.example"), join(root, ".dev.vars"));
  console.log("created .dev.vars from .dev.vars.example (development JWT_SECRET)");
}

/**
 * wrangler's arguments for the local D1 migrations, one command per database of wrangler.toml (the
 * directory and every shard, each from its own `migrations_dir`), into `persistDir` or wrangler's
 * default state.
 */
export function migrateCommands(persistDir?: string): string[][] {
  return readWranglerConfig().d1.map(({ binding }) => [
    "d1",
    "migrations",
    "apply",
    binding,
    "--local",
    ...(persistDir ? ["--persist-to", persistDir] : []),
  ]);
}

/** Applies every database's migrations (see `migrateCommands`), one after the other. */
export async function migrateAll(persistDir: string | undefined, options: CommandOptions): Promise<void> {
  for (const args of migrateCommands(persistDir)) await wrangler(args, options);
}

interface CommandOptions {
  output: Output;
  env?: NodeJS.ProcessEnv;
  cpu?: number | string;
  timeoutMs?: number;
}

/** Runs `wrangler …args` to completion with this process's Node, from the checkout. */
export function wrangler(args: string[], { env = serverEnv(), ...options }: CommandOptions): Promise<void> {
  return runCommand(process.execPath, [wranglerBin, ...args], { cwd: ROOT, env, ...options });
}

/** `wrangler deploy --dry-run --outdir DIR`: the Worker exactly as it would be uploaded (DIR/index.js). */
export async function buildBundle(outDir: string, options: CommandOptions): Promise<string> {
  await wrangler(["deploy", "--dry-run", "--outdir", outDir], options);
  const file = join(outDir, "index.js");
  if (!existsSync(file)) throw new Error(`wrangler deploy --dry-run wrote no ${file}`);
  return file;
}

export interface WranglerDevOptions {
  port?: number;
  persistDir: string;
  /** `--var NAME:VALUE` each. */
  vars?: Record<string, string>;
  /** Serve this prebuilt bundle (`--no-bundle`) rather than bundling and watching src/. */
  bundleFile?: string;
  assetsDir?: string;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  cpu?: number | string;
  output: Output;
  timeoutMs?: number;
  healthIntervalMs?: number;
  /** As `npm run dev` does first: .dev.vars, then the D1 migrations into `persistDir`. */
  asDev?: boolean;
}

/** `wrangler dev` on 127.0.0.1 in its own process group, its inspector on a free port; resolves once /health answers. */
export async function startWranglerDev(o: WranglerDevOptions): Promise<Server> {
  const env = o.env ?? serverEnv();
  if (o.asDev) {
    ensureDevVars();
    await migrateAll(o.persistDir, { env, output: o.output, cpu: o.cpu });
  }
  const port = o.port ?? (await freePort());
  const args = [
    wranglerBin,
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    "0",
    "--persist-to",
    o.persistDir,
    ...Object.entries(o.vars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ...(o.bundleFile ? ["--config", "wrangler.toml", "--no-bundle", o.bundleFile] : []),
    ...(o.assetsDir ? ["--assets", o.assetsDir] : []),
    ...(o.extraArgs ?? []),
  ];
  const proc = start(process.execPath, args, { cwd: ROOT, env, cpu: o.cpu, output: o.output });
  const base = `http://127.0.0.1:${port}`;
  try {
    const readyMs = await waitHealthy(base, proc, { timeoutMs: o.timeoutMs ?? 90_000, intervalMs: o.healthIntervalMs });
    return { proc, port, base, readyMs };
  } catch (err) {
    await stop(proc, { signal: "SIGKILL" });
    throw err;
  }
}

export interface WorkerdOptions {
  /** Where the generated config and the modules it embeds go (also the server's working directory). */
  dir: string;
  bundleFile: string;
  persistDir: string;
  wrangler: WranglerSubset;
  vars: Record<string, string>;
  port?: number;
  inspectorPort?: number;
  /** V8 flags for every isolate (the config's `v8Flags`), e.g. `--perf-prof` for `perf` profiles. */
  v8Flags?: string[];
  cpu?: number | string;
  output: Output;
  timeoutMs?: number;
}

/** Adds `v8Flags` to a config written by `writeWorkerdConfig`. */
function withV8Flags(configFile: string, flags: string[]): void {
  const anchor = "const config :Workerd.Config = (\n";
  const text = readFileSync(configFile, "utf8");
  if (!text.includes(anchor)) throw new Error(`${configFile}: no top-level config to add v8Flags to`);
  const list = flags.map((f) => JSON.stringify(f)).join(", ");
  writeFileSync(configFile, text.replace(anchor, `${anchor}  v8Flags = [ ${list} ],\n`));
}

/** The bundle under plain `workerd serve` (the workerd this project's wrangler uses); resolves once /health answers. */
export async function startWorkerd(o: WorkerdOptions): Promise<Server> {
  const port = o.port ?? (await freePort());
  const configFile = writeWorkerdConfig({
    dir: o.dir,
    bundleFile: o.bundleFile,
    persistDir: o.persistDir,
    port,
    wrangler: o.wrangler,
    vars: o.vars,
  });
  if (o.v8Flags?.length) withV8Flags(configFile, o.v8Flags);
  const inspector = o.inspectorPort ? [`--inspector-addr=127.0.0.1:${o.inspectorPort}`] : [];
  const proc = start(runtimePaths().workerdBin, ["serve", "--experimental", ...inspector, configFile], {
    cwd: o.dir,
    cpu: o.cpu,
    output: o.output,
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    const readyMs = await waitHealthy(base, proc, { timeoutMs: o.timeoutMs ?? 20_000, intervalMs: 100 });
    return { proc, port, base, readyMs };
  } catch (err) {
    await stop(proc, { signal: "SIGKILL" });
    throw err;
  }
}
