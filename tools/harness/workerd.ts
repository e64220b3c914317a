// Plain `workerd serve` of the `wrangler deploy --dry-run` bundle, with D1 wired the way miniflare
// (and so `wrangler dev` and `wrangler d1 execute --local`) wires it: the `cloudflare-internal:d1-api`
// wrapped binding over miniflare's own D1 entry worker and its SQLite-backed "D1DatabaseObject". The
// object keeps its database where `wrangler d1 ... --local --persist-to DIR` does (DIR/v3/d1), so the
// same directory can be migrated and bulk-seeded with wrangler and then served by plain workerd.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ROOT } from "./env.ts";

const require = createRequire(import.meta.url);

/** What the harness needs from wrangler.toml. */
export interface WranglerSubset {
  name?: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  d1: { binding: string; id: string }[];
  durableObjects: { name: string; className: string }[];
  ratelimits?: string[];
}

export interface WorkerdConfigOptions {
  dir: string;
  bundleFile: string;
  persistDir: string;
  port: number;
  wrangler: WranglerSubset;
  vars: Record<string, string>;
  workerName?: string;
}

/** What the harness needs from wrangler.toml, read with wrangler's own parser. */
export function readWranglerConfig(root: string = ROOT): WranglerSubset {
  const wrangler = require("wrangler") as {
    unstable_readConfig(args: { config: string }): WranglerToml;
  };
  const c = wrangler.unstable_readConfig({ config: join(root, "wrangler.toml") });
  return {
    name: c.name,
    compatibilityDate: c.compatibility_date ?? "",
    compatibilityFlags: [...(c.compatibility_flags ?? [])],
    vars: Object.fromEntries(Object.entries(c.vars ?? {}).map(([k, v]) => [k, String(v)])),
    d1: (c.d1_databases ?? []).map((d) => ({
      binding: d.binding,
      id: d.preview_database_id ?? d.database_id ?? d.database_name ?? d.binding,
    })),
    durableObjects: (c.durable_objects?.bindings ?? [])
      .filter((d) => !d.script_name)
      .map((d) => ({ name: d.name, className: d.class_name })),
    ratelimits: (c.ratelimits ?? []).map((r) => r.name),
  };
}

/** The part of wrangler's parsed configuration read above. */
interface WranglerToml {
  name?: string;
  compatibility_date?: string;
  compatibility_flags?: string[];
  vars?: Record<string, unknown>;
  d1_databases?: { binding: string; database_id?: string; preview_database_id?: string; database_name?: string }[];
  durable_objects?: { bindings?: { name: string; class_name: string; script_name?: string }[] };
  ratelimits?: { name: string }[];
}

/** The workerd and miniflare that this project's wrangler uses (so both servers run the same runtime). */
export interface RuntimePaths {
  workerdBin: string;
  workerdVersion: string;
  miniflareWorkers: string;
  miniflareVersion: string;
}

export function runtimePaths(): RuntimePaths {
  const wranglerRequire = createRequire(require.resolve("wrangler/package.json"));
  const workerdPkg = wranglerRequire.resolve("workerd/package.json");
  const miniflarePkg = wranglerRequire.resolve("miniflare/package.json");
  const workerdBin = wranglerRequire("workerd").default ?? wranglerRequire("workerd");
  return {
    workerdBin: typeof workerdBin === "string" ? workerdBin : join(dirname(workerdPkg), "bin", "workerd"),
    workerdVersion: require(workerdPkg).version,
    miniflareWorkers: join(dirname(miniflarePkg), "dist", "src", "workers"),
    miniflareVersion: require(miniflarePkg).version,
  };
}

const str = (s: unknown): string => JSON.stringify(String(s));

/**
 * Writes DIR/workerd.capnp (and copies the modules it embeds next to it). `wrangler` is the parsed
 * wrangler.toml subset we need: compatibility date/flags, vars, D1 database id, DO classes.
 */
export function writeWorkerdConfig({
  dir,
  bundleFile,
  persistDir,
  port,
  wrangler,
  vars,
  workerName = "parley",
}: WorkerdConfigOptions): string {
  mkdirSync(dir, { recursive: true });
  const { miniflareWorkers } = runtimePaths();
  copyFileSync(bundleFile, join(dir, "worker.js"));
  copyFileSync(join(miniflareWorkers, "shared", "index.worker.js"), join(dir, "mf-shared.js"));
  copyFileSync(join(miniflareWorkers, "shared", "zod.worker.js"), join(dir, "mf-zod.js"));
  copyFileSync(join(miniflareWorkers, "d1", "entry.worker.js"), join(dir, "d1-entry.js"));
  copyFileSync(join(miniflareWorkers, "d1", "database.worker.js"), join(dir, "d1-database.js"));
  // Rate-limit bindings exist so that env.* is complete, but always allow: the suite runs with
  // RATE_LIMITS=off, and a load test must not measure the limiter's refusals anyway.
  writeFileSync(
    join(dir, "always-allow.js"),
    "export default function makeBinding() { return { async limit() { return { success: true }; } }; }\n",
  );
  const d1Dir = join(persistDir, "v3", "d1");
  const doDir = join(persistDir, "v3", "do");
  mkdirSync(d1Dir, { recursive: true });
  mkdirSync(doDir, { recursive: true });

  const bindings = [
    ...Object.entries(vars).map(([name, value]) => `(name = ${str(name)}, text = ${str(value)})`),
    ...wrangler.d1.map(
      (db) => `(name = ${str(db.binding)}, wrapped = (moduleName = "cloudflare-internal:d1-api", innerBindings = [
        (name = "fetcher", service = (name = "d1:db:entry", props = (json = ${str(JSON.stringify({ MINIFLARE_NAMESPACE: db.id }))})))
      ]))`,
    ),
    ...wrangler.durableObjects.map((d) => `(name = ${str(d.name)}, durableObjectNamespace = ${str(d.className)})`),
    ...(wrangler.ratelimits ?? []).map(
      (name) => `(name = ${str(name)}, wrapped = (moduleName = "bench:always-allow"))`,
    ),
  ];
  const namespaces = wrangler.durableObjects.map(
    (d) => `(className = ${str(d.className)}, uniqueKey = ${str(`${workerName}-${d.className}`)}, enableSql = true)`,
  );
  const config = `# Generated by tools/harness/workerd.ts.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "app", worker = .app),
    (name = "d1:db:entry", worker = .d1Entry),
    (name = "d1:db", worker = .d1Object),
    (name = "d1:storage", disk = (path = ${str(d1Dir)}, writable = true)),
    (name = "do:storage", disk = (path = ${str(doDir)}, writable = true)),
  ],
  sockets = [ (name = "http", address = ${str(`127.0.0.1:${port}`)}, http = (), service = "app") ],
  extensions = [ (modules = [
    (name = "miniflare:shared", esModule = embed "mf-shared.js"),
    (name = "miniflare:zod", esModule = embed "mf-zod.js"),
    (name = "bench:always-allow", esModule = embed "always-allow.js", internal = true),
  ]) ],
);

const app :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = ${str(wrangler.compatibilityDate)},
  compatibilityFlags = [ ${wrangler.compatibilityFlags.map(str).join(", ")} ],
  bindings = [
    ${bindings.join(",\n    ")}
  ],
  durableObjectNamespaces = [ ${namespaces.join(", ")} ],
  durableObjectStorage = (localDisk = "do:storage"),
);

const d1Entry :Workerd.Worker = (
  modules = [ (name = "d1-entry.js", esModule = embed "d1-entry.js") ],
  compatibilityDate = "2023-07-24",
  compatibilityFlags = [ "enhanced_error_serialization" ],
  bindings = [ (name = "MINIFLARE_OBJECT", durableObjectNamespace = (serviceName = "d1:db", className = "D1DatabaseObject")) ],
);

const d1Object :Workerd.Worker = (
  modules = [ (name = "d1-database.js", esModule = embed "d1-database.js") ],
  compatibilityDate = "2023-07-24",
  compatibilityFlags = [ "nodejs_compat", "experimental" ],
  bindings = [ (name = "MINIFLARE_BLOBS", service = "d1:storage") ],
  durableObjectNamespaces = [ (className = "D1DatabaseObject", uniqueKey = "miniflare-D1DatabaseObject", enableSql = true) ],
  durableObjectStorage = (localDisk = "d1:storage"),
);
`;
  const file = join(dir, "workerd.capnp");
  writeFileSync(file, config);
  return file;
}
