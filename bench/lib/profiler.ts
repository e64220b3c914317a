// CPU profiles of workerd's isolates over the inspector protocol (`--profile` in run.mjs): one
// profile per worker (the app, miniflare's D1 entry and its D1 object), top functions by self time.
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { request } from "./http.ts";

/** A V8 CPU profile, as the inspector's Profiler.stop returns it. */
export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface Waiting {
  resolve(result: any): void;
  reject(err: Error): void;
}

class Session {
  readonly url: string;
  nextId: number;
  readonly waiting: Map<number, Waiting>;
  ws!: WebSocket;

  constructor(url: string) {
    this.url = url;
    this.nextId = 1;
    this.waiting = new Map();
  }

  async open(): Promise<this> {
    this.ws = new WebSocket(this.url, { perMessageDeflate: false, maxPayload: 1 << 30 });
    this.ws.on("message", (data) => {
      const msg = JSON.parse(data.toString());
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.error) w.reject(new Error(msg.error.message));
      else w.resolve(msg.result);
    });
    await new Promise<void>((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("error", reject);
    });
    return this;
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Starts the V8 sampling profiler in every isolate of the workerd listening on `inspectorPort`. */
export async function startProfiling(
  inspectorPort: number,
  intervalUs = 250,
): Promise<{ stop(): Promise<Record<string, CpuProfile>> }> {
  const list: { id: string; webSocketDebuggerUrl: string }[] = (
    await request(`http://127.0.0.1:${inspectorPort}`, "GET", "/json/list")
  ).json();
  const sessions: { id: string; session: Session }[] = [];
  for (const target of list) {
    const s = await new Session(target.webSocketDebuggerUrl.replace("localhost", "127.0.0.1")).open();
    await s.send("Profiler.enable");
    await s.send("Profiler.setSamplingInterval", { interval: intervalUs });
    await s.send("Profiler.start");
    sessions.push({ id: target.id, session: s });
  }
  return {
    async stop() {
      const profiles: Record<string, CpuProfile> = {};
      for (const { id, session } of sessions) {
        profiles[id] = (await session.send("Profiler.stop")).profile;
        session.close();
      }
      return profiles;
    },
  };
}

/** Which src/ module a line of the esbuild bundle belongs to (esbuild heads each with `// src/…`). */
export function bundleModules(bundleFile: string): (line: number) => string {
  const marks: [number, string][] = [];
  readFileSync(bundleFile, "utf8")
    .split("\n")
    .forEach((line, i) => {
      // In a worktree node_modules may be a symlink, and esbuild names its files through the
      // target (`../main/node_modules/hono/…`): the package path is what follows the last one.
      const m = /^\/\/ ((?:src\/|\S*node_modules\/)\S+)$/.exec(line);
      if (m?.[1]) marks.push([i, m[1].replace(/^.*node_modules\//, "")]);
    });
  return (line: number) => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = "?";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [at, name] = marks[mid]!;
      if (at <= line) {
        found = name;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

/**
 * Self and total time per function, in ms, from a V8 CPU profile; `where(frame)` names the module.
 * Total counts a function once per sample even when it recurses.
 */
export interface ProfileSummary {
  busyMs: number;
  idleOrNativeMs: number;
  top: { function: string; selfMs: number; totalMs: number }[];
  totals: { function: string; totalMs: number }[];
}

export function summariseProfile(profile: CpuProfile, where: (frame: CallFrame) => string = () => ""): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (frame: CallFrame) => {
    const name = frame.functionName || "(anonymous)";
    if (!frame.url) return name;
    return `${name} ${where(frame) || frame.url.split("/").pop()}:${frame.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let sampled = 0;
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const ms = (timeDeltas[i + 1] ?? timeDeltas[i] ?? 0) / 1000;
    let node = byId.get(samples[i]!)!;
    const k = key(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + ms);
    if (!["(idle)", "(program)", "(garbage collector)"].includes(node.callFrame.functionName)) sampled += ms;
    const seen = new Set();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      node = byId.get(id)!;
      const kk = key(node.callFrame);
      if (seen.has(kk)) continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + ms);
    }
  }
  const rows = [...self.entries()]
    .map(([k, ms]) => ({ function: k, selfMs: Number(ms.toFixed(1)), totalMs: Number((total.get(k) ?? 0).toFixed(1)) }))
    .sort((a, b) => b.selfMs - a.selfMs);
  const idle = (self.get("(idle)") ?? 0) + (self.get("(program)") ?? 0);
  return {
    busyMs: Number(sampled.toFixed(1)),
    idleOrNativeMs: Number(idle.toFixed(1)),
    top: rows,
    totals: [...total.entries()]
      .map(([k, ms]) => ({ function: k, totalMs: Number(ms.toFixed(1)) }))
      .sort((a, b) => b.totalMs - a.totalMs),
  };
}
