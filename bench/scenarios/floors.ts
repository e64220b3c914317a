// Parley against its floors (bench/floor/): the write path against a frameworkless handler of the
// same statements, and the sockets against a bare Durable Object, on the same server in the same run.
import { round } from "../lib/http.ts";
import type { BenchServer } from "../lib/servers.ts";
import type { LatencySummary } from "../lib/stats.ts";
import { cpuMs, waitIdle } from "../lib/system.ts";
import { type WriteConversation, write } from "./http.ts";
import { type Conversation, scale } from "./sockets.ts";

export const FLOOR_WRITE_PATH = "/__floor/messages";
export const FLOOR_WS_PATH = "/__floor/ws";
export const FLOOR_BROADCAST_PATH = "/__floor/ws/messages";

export const median = (xs: (number | null)[]): number | null => {
  const sorted = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : round(a / b, 3));

type ScaleResult = Awaited<ReturnType<typeof scale>>;

export interface WriteRound {
  okPerSecond: number;
  ok: number;
  errors: number;
  /** workerd's CPU from the start of the round until it is idle again (the work left behind included). */
  cpuMs: number;
  cpuPerMessageMs: number | null;
  settleMs: number;
  latencyMs: LatencySummary;
}

/** One closed-loop run of `path`, then the wait until workerd is idle, all of it billed to the round. */
async function writeRound(
  server: BenchServer,
  conversations: WriteConversation[],
  { path, tag, connections, durationS }: { path: string; tag: string; connections: number; durationS: number },
): Promise<WriteRound> {
  const pid = server.pid as number;
  await waitIdle(pid, { maxMs: 8000 });
  const cpu0 = cpuMs(pid);
  const run = await write({ server, conversations, connections, durationS, tag, path });
  const settle = await waitIdle(pid, { maxMs: 8000 });
  const cpu = cpuMs(pid) - cpu0;
  return {
    okPerSecond: run.okPerSecond,
    ok: run.ok,
    errors: run.errors,
    cpuMs: round(cpu),
    cpuPerMessageMs: run.ok > 0 ? round(cpu / run.ok, 3) : null,
    settleMs: settle.ms,
    latencyMs: run.latencyMs,
  };
}

/**
 * `POST /messages` and the write floor in interleaved rounds (Parley, floor, Parley, floor …) with the
 * write scenario's load, after a short unreported warm-up of each; medians over the rounds.
 */
export async function writeFloor({
  server,
  conversations,
  connections,
  rounds,
  roundS,
}: {
  server: BenchServer;
  conversations: WriteConversation[];
  connections: number;
  rounds: number;
  roundS: number;
}) {
  const load = { connections, durationS: roundS };
  for (const [path, tag] of [
    ["/messages", "fp-warm"],
    [FLOOR_WRITE_PATH, "ff-warm"],
  ] as const) {
    const warm = await write({ server, conversations, connections, durationS: 1, tag, path });
    if (warm.ok === 0) throw new Error(`${path}: nothing stored in the warm-up (${warm.non2xx} non-2xx answers)`);
  }
  const parley: WriteRound[] = [];
  const floor: WriteRound[] = [];
  for (let i = 0; i < rounds; i++) {
    parley.push(await writeRound(server, conversations, { path: "/messages", tag: `fp${i}`, ...load }));
    floor.push(await writeRound(server, conversations, { path: FLOOR_WRITE_PATH, tag: `ff${i}`, ...load }));
  }
  const summary = (rs: WriteRound[]) => ({
    okPerSecond: median(rs.map((r) => r.okPerSecond)),
    cpuPerMessageMs: median(rs.map((r) => r.cpuPerMessageMs)),
  });
  const p = summary(parley);
  const f = summary(floor);
  return {
    rounds,
    roundS,
    connections,
    conversations: conversations.length,
    median: { parley: p, floor: f },
    /** Parley ÷ floor, of the medians. */
    ratios: {
      okPerSecond: ratio(p.okPerSecond, f.okPerSecond),
      cpuPerMessage: ratio(p.cpuPerMessageMs, f.cpuPerMessageMs),
    },
    parley,
    floor,
    errors: [...parley, ...floor].reduce((sum, r) => sum + r.errors, 0),
  };
}

/**
 * As many idle sockets as `scale` holds on Parley's room, then on the socket floor's object (exactly as
 * many), each on a fresh server since memory is only comparable from the same start; `rounds` times.
 * Medians and Parley ÷ floor ratios: memory per idle socket, time for a broadcast to reach the last one.
 */
export async function socketFloor({
  server,
  fresh,
  rounds,
  count,
  ...run
}: {
  server: BenchServer;
  fresh: (what: string) => Promise<void>;
  rounds: number;
  count: number;
  broadcasts: number;
  conversation: Conversation;
  idleS: number;
  deadlineMs: number;
}) {
  const parley: ScaleResult[] = [];
  const floor: ScaleResult[] = [];
  let sockets = count;
  for (let i = 0; i < rounds; i++) {
    await fresh("Parley");
    const p = await scale({ server, count: sockets, ...run });
    parley.push(p);
    sockets = p.attempted;
    await fresh("the floor");
    floor.push(await scale({ server, count: sockets, ...run, wsPath: FLOOR_WS_PATH, postPath: FLOOR_BROADCAST_PATH }));
  }
  const summary = (rs: ScaleResult[]) => ({
    held: median(rs.map((r) => r.heldAfterIdle)),
    rssPerSocketKiB: median(rs.map((r) => r.rssPerSocketKiB)),
    rssPerSocketAfterProbeKiB: median(rs.map((r) => r.rssPerSocketAfterProbeKiB)),
    broadcastMs: median(
      rs.flatMap((r) => [r.firstBroadcast, r.secondBroadcast, ...r.moreBroadcasts].map((b) => b.toLastSocketMs)),
    ),
  });
  const p = summary(parley);
  const f = summary(floor);
  const all = [...parley, ...floor];
  return {
    requested: count,
    sockets,
    rounds,
    broadcasts: run.broadcasts,
    median: { parley: p, floor: f },
    /** Parley ÷ floor, of the medians; memory past the first 100 sockets (see `scale`), and from the start. */
    ratios: {
      rssPerSocket: ratio(p.rssPerSocketAfterProbeKiB, f.rssPerSocketAfterProbeKiB),
      rssPerSocketFromStart: ratio(p.rssPerSocketKiB, f.rssPerSocketKiB),
      broadcast: ratio(p.broadcastMs, f.broadcastMs),
    },
    errors: all.reduce((sum, r) => sum + r.errors, 0),
    droppedFrames: all.reduce((sum, r) => sum + r.droppedFrames, 0),
    parley,
    floor,
  };
}
