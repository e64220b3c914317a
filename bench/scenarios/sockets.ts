// Socket scenarios: fan-out latency (ws and browser-like clients), capacity, and scale.
import { performance } from "node:perf_hooks";
import { type Broadcast, broadcastOnce, type FanoutResult, fanoutRun } from "../lib/fanout.ts";
import { round } from "../lib/http.ts";
import type { User } from "../lib/seed.ts";
import type { BenchServer } from "../lib/servers.ts";
import { type ConnectResult, SocketGroup, type SocketKind, sleep } from "../lib/sockets.ts";
import { fileLimit, memoryMiB, openFiles } from "../lib/system.ts";

export interface Conversation {
  id: number;
  members: User[];
}

export interface OpenedGroup {
  group: SocketGroup;
  connect: ConnectResult;
  warmup: Broadcast;
  negotiatedExtensions: string[];
}

/**
 * Opens `count` sockets on `conversation` (socket i belongs to member i % members), sends a warm-up
 * broadcast (reported on its own: the first message wakes the room and its storage), then a few
 * unreported ones so that the measured run starts warm.
 */
export async function openGroup({
  server,
  kind,
  conversation,
  count,
  concurrency = 50,
  deadlineMs = 60_000,
}: {
  server: BenchServer;
  kind: SocketKind;
  conversation: Conversation;
  count: number;
  concurrency?: number;
  deadlineMs?: number;
}): Promise<OpenedGroup> {
  const group = new SocketGroup(kind);
  const connect = await group.open({
    wsBase: server.wsBase,
    conversationId: conversation.id,
    tokens: conversation.members.map((m) => m.token),
    count,
    concurrency,
    deadlineMs,
  });
  if (group.size === 0) throw new Error(`${kind}: no socket was admitted: ${JSON.stringify(connect.failures)}`);
  const warmup = await broadcastOnce({
    base: server.base,
    conversationId: conversation.id,
    sender: conversation.members[0]!,
    group,
  });
  for (let i = 0; i < 2; i++) {
    await broadcastOnce({
      base: server.base,
      conversationId: conversation.id,
      sender: conversation.members[0]!,
      group,
      drainMs: 2000,
    });
  }
  return { group, connect, warmup, negotiatedExtensions: [...group.extensions] };
}

/** Constant `rate` messages/s into the conversation for `durationS`; latency to the last socket. */
export function fanout({
  server,
  conversation,
  group,
  rate,
  durationS,
}: {
  server: BenchServer;
  conversation: Conversation;
  group: SocketGroup;
  rate: number;
  durationS: number;
}): Promise<FanoutResult> {
  return fanoutRun({
    base: server.base,
    conversationId: conversation.id,
    senders: conversation.members,
    group,
    rate,
    durationMs: durationS * 1000,
  });
}

/**
 * Steps the message rate up so that deliveries/s (rate × sockets) climbs the `ladder`; a step passes
 * with p99 to the last socket ≤ `p99LimitMs`, no error and no dropped frame. Stops at the first
 * failing step; capacity is the highest passing one.
 */
type Step = FanoutResult & { targetDeliveriesPerSecond: number; messagesPerSecond: number; pass: boolean };

export async function capacity({
  server,
  conversation,
  group,
  ladder,
  stepS,
  p99LimitMs = 100,
}: {
  server: BenchServer;
  conversation: Conversation;
  group: SocketGroup;
  ladder: number[];
  stepS: number;
  p99LimitMs?: number;
}) {
  const steps: Step[] = [];
  let best: Step | null = null;
  for (const deliveries of ladder) {
    const rate = deliveries / group.size;
    const r = await fanoutRun({
      base: server.base,
      conversationId: conversation.id,
      senders: conversation.members,
      group,
      rate,
      durationMs: stepS * 1000,
      drainMs: 2000,
    });
    const pass =
      r.errors === 0 &&
      r.droppedFrames === 0 &&
      r.latencyToLastSocketMs.p99 !== null &&
      r.latencyToLastSocketMs.p99 <= p99LimitMs;
    steps.push({ targetDeliveriesPerSecond: deliveries, messagesPerSecond: round(rate, 2), pass, ...r });
    if (!pass) break;
    best = steps.at(-1) ?? null;
    await sleep(300);
  }
  return {
    sockets: group.size,
    p99LimitMs,
    stepS,
    deliveriesPerSecond: best?.targetDeliveriesPerSecond ?? 0,
    messagesPerSecond: best?.messagesPerSecond ?? 0,
    best: best && pick(best),
    firstFailure: steps.at(-1)?.pass ? null : pick(steps.at(-1)),
    ladderExhausted: steps.length === ladder.length && steps.at(-1)!.pass,
    steps: steps.map(pick),
  };
}

const countOf = (errors: Record<string, number> | undefined) => Object.values(errors ?? {}).reduce((a, b) => a + b, 0);

const pick = (s: Step | undefined) =>
  s && {
    targetDeliveriesPerSecond: s.targetDeliveriesPerSecond,
    messagesPerSecond: s.messagesPerSecond,
    pass: s.pass,
    latencyToLastSocketMs: s.latencyToLastSocketMs,
    postLatencyMs: s.postLatencyMs,
    errors: s.errors,
    postErrors: s.postErrors,
    droppedFrames: s.droppedFrames,
    outOfOrderFrames: s.outOfOrderFrames,
    generatorMaxLagMs: s.generatorMaxLagMs,
  };

/**
 * `count` idle sockets on one conversation: connect them all, stay idle for `idleS`, check that all
 * are still held and how much memory workerd uses, then one broadcast to all of them (and a second,
 * or `broadcasts` in all).
 * workerd holds 2 file descriptors per socket: if its open-files limit cannot hold `count`, the run
 * uses as many as fit (measured on the first 100) and says so, with the memory projected to `count`.
 * The same on the socket floor (bench/floor/) with its `wsPath` and `postPath`.
 */
export async function scale({
  server,
  conversation,
  count,
  idleS,
  deadlineMs,
  wsPath,
  postPath,
  broadcasts = 2,
}: {
  server: BenchServer;
  conversation: Conversation;
  count: number;
  idleS: number;
  deadlineMs: number;
  wsPath?: string;
  postPath?: string;
  /** How many broadcasts to time (at least the first and a second). */
  broadcasts?: number;
}) {
  const pid = server.pid as number;
  const before = memoryMiB(pid);
  const group = new SocketGroup("ws");
  const open = (n: number, ms: number) =>
    group.open({
      wsBase: server.wsBase,
      conversationId: conversation.id,
      tokens: conversation.members.map((m) => m.token),
      count: n,
      concurrency: 64,
      deadlineMs: ms,
      path: wsPath,
    });
  const started = performance.now();
  const fds0 = openFiles(pid);
  const probe = await open(Math.min(100, count), deadlineMs);
  const fdsPerSocket = probe.held > 0 ? Math.max(1, (openFiles(pid) - fds0) / probe.held) : 2;
  // Once the first sockets are in, what is loaded once (the object, D1's isolates) is counted.
  const afterProbe = memoryMiB(pid);
  const fdLimit = fileLimit(pid);
  const fit = Math.floor((fdLimit - openFiles(pid) - 300) / fdsPerSocket) + probe.held;
  const target = Math.min(count, fit);
  const rest = await open(target - probe.held, Math.max(1000, deadlineMs - (performance.now() - started)));
  const connectMs = performance.now() - started;
  const connect = {
    requested: target,
    held: probe.held + rest.held,
    failed: probe.failed + rest.failed,
    failures: merge(probe.failures, rest.failures),
    notAttempted: probe.notAttempted + rest.notAttempted,
    timedOut: probe.timedOut || rest.timedOut,
    connectMs: round(connectMs),
    connectsPerSecond: round(((probe.held + rest.held) / connectMs) * 1000, 1),
  };
  const afterConnect = memoryMiB(pid);
  await sleep(idleS * 1000);
  const heldAfterIdle = group.openCount();
  const afterIdle = memoryMiB(pid);
  const t0 = performance.now();
  const all: Broadcast[] = [];
  for (let i = 0; i < Math.max(2, broadcasts); i++) {
    all.push(
      await broadcastOnce({
        base: server.base,
        conversationId: conversation.id,
        sender: conversation.members[0]!,
        group,
        drainMs: 15_000,
        path: postPath,
      }),
    );
  }
  const [first, second, ...more] = all as [Broadcast, Broadcast, ...Broadcast[]];
  const afterBroadcast = memoryMiB(pid);
  const perSocketMiB = connect.held > 0 ? (afterIdle.rss - before.rss) / connect.held : null;
  const beyondProbe = connect.held - probe.held;
  const marginalMiB = beyondProbe > 0 ? (afterIdle.rss - afterProbe.rss) / beyondProbe : null;
  const result = {
    requested: count,
    attempted: target,
    limitedBy: target < count ? `workerd's open-files limit (${fdLimit}; ${round(fdsPerSocket, 2)} per socket)` : null,
    connect,
    workerdFdsPerSocket: round(fdsPerSocket, 2),
    workerdOpenFilesLimit: fdLimit,
    idleS,
    heldAfterIdle,
    allHeld: heldAfterIdle === count,
    closedUnexpectedly: group.closedUnexpectedly,
    closeCodes: group.closeCodes,
    rssMiB: {
      before: round(before.rss, 1),
      afterProbe: round(afterProbe.rss, 1),
      afterConnect: round(afterConnect.rss, 1),
      afterIdle: round(afterIdle.rss, 1),
      afterBroadcast: round(afterBroadcast.rss, 1),
      peak: round(afterBroadcast.peak, 1),
      projectedAtRequested: perSocketMiB === null ? null : round(before.rss + perSocketMiB * count, 1),
    },
    rssPerSocketKiB: perSocketMiB === null ? null : round(perSocketMiB * 1024, 1),
    /** Per socket past the first `probe` ones: without what loading the object and D1 costs once. */
    rssPerSocketAfterProbeKiB: marginalMiB === null ? null : round(marginalMiB * 1024, 1),
    firstBroadcast: first,
    secondBroadcast: second,
    moreBroadcasts: more,
    broadcastsMs: round(performance.now() - t0),
    errors: connect.failed + all.reduce((n, b) => n + countOf(b.postErrors), 0) + group.closedUnexpectedly,
    droppedFrames: all.reduce((n, b) => n + b.droppedFrames, 0),
  };
  await group.closeAll();
  return result;
}

const merge = (a: Record<string, number>, b: Record<string, number>) => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
};
