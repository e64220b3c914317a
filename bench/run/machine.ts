// The machine and the versions a run reports.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { runtimePaths } from "../../tools/harness/index.ts";
import { round } from "../lib/http.ts";

const require = createRequire(import.meta.url);

export const cores = os.availableParallelism?.() ?? os.cpus().length;

export function machine() {
  const cpuinfo = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown",
    cores,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

export function versions() {
  const rt = runtimePaths();
  let workerdBuild: string | null = null;
  try {
    workerdBuild = execFileSync(rt.workerdBin, ["--version"], { encoding: "utf8" }).trim();
  } catch {}
  const pkg = (name: string): string | null => {
    try {
      return require(`${name}/package.json`).version;
    } catch {
      return null;
    }
  };
  return {
    node: process.version,
    wrangler: pkg("wrangler"),
    workerd: rt.workerdVersion,
    workerdBuild,
    miniflare: rt.miniflareVersion,
    autocannon: pkg("autocannon"),
    ws: pkg("ws"),
    hdrHistogramJs: pkg("hdr-histogram-js"),
  };
}

/** This process's soft limit on open files: 10,000 client sockets need as many here (and in workerd). */
export function openFilesLimit(): number {
  try {
    return Number(/^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1]) || Infinity;
  } catch {
    return Infinity;
  }
}
