// Where workerd's CPU went, by module, from `perf script` text (bench/lib/perf.ts): each sample is
// billed twice, to the module of its leaf frame ("self") and to the innermost JavaScript module on
// its stack ("charged": what that module ran, the engine's builtins and native calls included).
import { createReadStream } from "node:fs";
import { basename } from "node:path";
import { createInterface } from "node:readline";

export interface ModuleRow {
  module: string;
  selfMs: number;
  chargedMs: number;
  /** Per unit (message or request) of the scenario, when it has units. */
  selfMsPerUnit: number | null;
  chargedMsPerUnit: number | null;
}

export interface PerfSummary {
  samples: number;
  periodNs: number;
  perfCpuMs: number;
  modules: ModuleRow[];
  /** Leaf functions by self time: JavaScript as `name module:line`, native code by symbol. */
  topSymbols: { symbol: string; module: string; selfMs: number }[];
}

interface Frame {
  sym: string;
  dso: string;
}

const MINIFLARE_SCRIPTS = new Set(["d1-entry.js", "d1-database.js", "mf-zod.js", "mf-shared.js"]);

/** `name/…` → `name`, `@scope/name/…` → `@scope/name`, `src/…` → Parley's own code. */
export function packageOf(path: string): string {
  if (path.startsWith("src/")) return "Parley (src/)";
  if (path === "?") return "esbuild's helpers (bundle head)";
  const parts = path.split("/");
  return path.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? path);
}

const JS_FRAME = /^JS:[~^+*]?(.*) (\S+):(\d+):(\d+)$/;

/** The module a frame belongs to, and whether it is JavaScript with a source position. */
function classify(frame: Frame, moduleOfLine: (line: number) => string): { module: string; js: boolean } {
  const { sym, dso } = frame;
  if (dso.startsWith("[kernel")) return { module: "kernel", js: false };
  if (sym.startsWith("JS:")) {
    const m = JS_FRAME.exec(sym);
    if (!m) return { module: "JavaScript (no source position)", js: false };
    const script = m[2]!;
    if (script === "worker.js") return { module: packageOf(moduleOfLine(Number(m[3]) - 1)), js: true };
    if (MINIFLARE_SCRIPTS.has(script)) return { module: "miniflare's D1 emulation (JS)", js: true };
    if (script.includes(":")) return { module: "workerd's built-in JS (node:*, D1 binding)", js: true };
    return { module: script, js: true };
  }
  if (dso.includes("/jitted-") || sym.startsWith("Builtins_"))
    return { module: "V8 builtins, interpreter, IC stubs", js: false };
  if (dso === "[unknown]" || sym === "[unknown]") return { module: "unknown", js: false };
  if (/^(v8::|cppgc::|heap::base::)/.test(sym)) return { module: "V8 runtime, GC, compilers", js: false };
  if (sym.startsWith("sqlite3")) return { module: "SQLite", js: false };
  if (/tcmalloc|TCMalloc/.test(sym)) return { module: "malloc (tcmalloc)", js: false };
  const file = basename(dso);
  if (file === "workerd") return { module: "workerd native (KJ, HTTP, APIs, Rust)", js: false };
  if (/^(libc|libm|ld-linux|libstdc\+\+|libgcc|libpthread)/.test(file) || dso === "[vdso]")
    return { module: "libc", js: false };
  return { module: file, js: false };
}

/** `    12345 sym (dso)`: perf script's frame line (the symbol may hold parentheses, the dso does not). */
const FRAME_LINE = /^\s*[0-9a-f]+ (.*) \(([^()]*)\)$/;

async function* samples(file: string): AsyncGenerator<{ period: number; frames: Frame[] }> {
  let period = 0;
  let frames: Frame[] = [];
  let open = false;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line.trim() === "") {
      if (open) yield { period, frames };
      open = false;
      continue;
    }
    if (!line.startsWith("\t")) {
      if (open) yield { period, frames };
      const m = /^\s*(\d+)\s*(.*)$/.exec(line);
      period = Number(m?.[1] ?? 0);
      frames = [];
      open = true;
      const inline = m?.[2] ? FRAME_LINE.exec(m[2]) : null;
      if (inline) frames.push({ sym: inline[1]!, dso: inline[2]! });
      continue;
    }
    const f = FRAME_LINE.exec(line);
    if (f) frames.push({ sym: f[1]!, dso: f[2]! });
  }
  if (open) yield { period, frames };
}

const ms = (ns: number) => ns / 1e6;
const r3 = (x: number) => Number(x.toFixed(3));

/** Sums the samples of a `perf script -F period,ip,sym,dso` text file by module; `units` divides. */
export async function summarisePerf(
  file: string,
  moduleOfLine: (line: number) => string,
  units: number | null,
): Promise<PerfSummary> {
  const self = new Map<string, number>();
  const charged = new Map<string, number>();
  const symbols = new Map<string, { module: string; ns: number }>();
  const add = (map: Map<string, number>, key: string, ns: number) => map.set(key, (map.get(key) ?? 0) + ns);
  let count = 0;
  let totalNs = 0;
  let periodNs = 0;
  for await (const s of samples(file)) {
    count++;
    totalNs += s.period;
    periodNs ||= s.period;
    const leaf = s.frames[0];
    const leafClass = leaf ? classify(leaf, moduleOfLine) : { module: "unknown", js: false };
    add(self, leafClass.module, s.period);
    let owner = leafClass;
    for (const frame of s.frames) {
      const c = frame === leaf ? leafClass : classify(frame, moduleOfLine);
      if (c.js) {
        owner = c;
        break;
      }
    }
    add(charged, owner.module, s.period);
    if (leaf) {
      const m = JS_FRAME.exec(leaf.sym);
      const key = m ? `${m[1] || "(anonymous)"} ${m[2]}:${m[3]}` : leaf.sym.slice(0, 160);
      const entry = symbols.get(key) ?? { module: leafClass.module, ns: 0 };
      entry.ns += s.period;
      symbols.set(key, entry);
    }
  }
  const per = (ns: number) => (units ? r3(ms(ns) / units) : null);
  const modules = [...new Set([...self.keys(), ...charged.keys()])]
    .map((module) => {
      const s = self.get(module) ?? 0;
      const c = charged.get(module) ?? 0;
      return {
        module,
        selfMs: r3(ms(s)),
        chargedMs: r3(ms(c)),
        selfMsPerUnit: per(s),
        chargedMsPerUnit: per(c),
      };
    })
    .sort((a, b) => b.chargedMs - a.chargedMs || b.selfMs - a.selfMs);
  const topSymbols = [...symbols.entries()]
    .map(([symbol, { module, ns }]) => ({ symbol, module, selfMs: r3(ms(ns)) }))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, 25);
  return { samples: count, periodNs, perfCpuMs: r3(ms(totalNs)), modules, topSymbols };
}
