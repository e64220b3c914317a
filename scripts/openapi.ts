// `npm run openapi` (run by `npm run check`): takes the OpenAPI document exactly as the Worker
// serves it at /openapi.json, lints it with Redocly's recommended rules (zero errors, zero
// warnings), and generates TypeScript types from it with openapi-typescript, the way a team
// writing another client would. Output goes to .openapi/ (git-ignored):
//   .openapi/openapi.json   the document
//   .openapi/schema.d.ts    the generated types, used by test/e2e/openapi-client.test.ts
//
// The app is bundled for Node with esbuild and asked for the document in-process: no server and
// no database are needed, since /openapi.json touches neither.

import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { readWranglerConfig } from "../tools/harness/index.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}.openapi`;
mkdirSync(outdir, { recursive: true });

const bundle = `${outdir}/app.mjs`;
await build({
  absWorkingDir: root,
  entryPoints: ["src/app.ts"],
  outfile: bundle,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node22",
  logLevel: "warning",
});
// Node 24 lacks the TC39 base64 methods that workerd has (the app's config check decodes the VAPID
// key with them); the app runs here only to print its document.
type Base64Options = { alphabet?: "base64" | "base64url"; omitPadding?: boolean };
if (!("fromBase64" in Uint8Array)) {
  Object.assign(Uint8Array, {
    fromBase64: (text: string, options: Base64Options = {}) =>
      new Uint8Array(Buffer.from(text, options.alphabet ?? "base64")),
  });
  Object.defineProperty(Uint8Array.prototype, "toBase64", {
    value(this: Uint8Array, options: Base64Options = {}) {
      const text = Buffer.from(this).toString(options.alphabet ?? "base64");
      return options.omitPadding ? text.replace(/=+$/, "") : text;
    },
  });
}
const { app } = (await import(bundle)) as { app: { request: (path: string, init: object, env: object) => Response } };
// The deployment's own variables (wrangler.toml) with the development secrets of .dev.vars.example:
// the configuration check passes as it does under `npm start`.
const developmentSecrets = Object.fromEntries(
  readFileSync(`${root}.dev.vars.example`, "utf8")
    .split("\n")
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
);
// D1 bindings that refuse to run anything: the configuration checks SHARD_PLACEMENT against them.
const unusedD1 = {
  prepare: () => {
    throw new Error("the OpenAPI document reads no database");
  },
  withSession: () => unusedD1,
  getBookmark: () => null,
};
const wranglerConfig = readWranglerConfig();
const databases = Object.fromEntries(wranglerConfig.d1.map((d) => [d.binding, unusedD1]));
const env = { ...wranglerConfig.vars, ...developmentSecrets, ...databases };
const res = await app.request("/openapi.json", {}, env);
if (res.status !== 200) throw new Error(`/openapi.json answered ${res.status}`);
const document = `${JSON.stringify(await res.json(), null, 2)}\n`;
writeFileSync(`${outdir}/openapi.json`, document);

const bin = (name: string) => `${root}node_modules/.bin/${name}`;
const quiet = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };
const lint = (format: string) =>
  execFileSync(bin("redocly"), ["lint", ".openapi/openapi.json", "--config", "redocly.yaml", "--format", format], {
    cwd: root,
    env: quiet,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
// Redocly exits non-zero on errors only; warnings must fail this check too.
let totals: { errors: number; warnings: number };
try {
  totals = (JSON.parse(lint("json")) as { totals: { errors: number; warnings: number } }).totals;
} catch {
  totals = { errors: 1, warnings: 0 };
}
if (totals.errors > 0 || totals.warnings > 0) {
  try {
    lint("stylish");
  } catch (err) {
    console.error((err as { stdout?: string }).stdout ?? err);
  }
  console.error(`openapi: ${totals.errors} errors and ${totals.warnings} warnings from redocly lint`);
  process.exit(1);
}
execFileSync(bin("openapi-typescript"), [".openapi/openapi.json", "--output", ".openapi/schema.d.ts"], {
  cwd: root,
  stdio: ["ignore", "ignore", "inherit"],
});
console.log("openapi: .openapi/openapi.json lints clean; .openapi/schema.d.ts generated");
