// Delivery tracking for the fan-out, capacity and scale scenarios: messages posted at a constant
// rate into a conversation, timed to the first and the last of a group's sockets.
import { performance } from "node:perf_hooks";
import { openLoop, request, round } from "./http.ts";
import { messageBody, type User } from "./seed.ts";
import { type SocketEntry, type SocketGroup, sleep } from "./sockets.ts";
import { Histogram, type LatencySummary } from "./stats.ts";

const CMID = '"clientMessageId":"';
const SEQ = '"seq":';

/**
 * Counts each message's frames across the group's sockets: latency to the first and to the last
 * socket (from the POST's intended send time), per-socket seq order, and what never arrived.
 */
interface Pending {
  t0: number;
  count: number;
  failed: boolean;
}

export class DeliveryTracker {
  readonly n: number;
  readonly pending: Map<string, Pending>;
  readonly first: Histogram;
  readonly last: Histogram;
  completed: number;
  frames: number;
  unexpected: number;
  outOfOrder: number;
  gaps: number;

  constructor(sockets: number) {
    this.n = sockets;
    this.pending = new Map();
    this.first = new Histogram();
    this.last = new Histogram();
    this.completed = 0;
    this.frames = 0;
    this.unexpected = 0;
    this.outOfOrder = 0;
    this.gaps = 0;
  }

  expect(cmid: string, intendedAt: number): void {
    this.pending.set(cmid, { t0: intendedAt, count: 0, failed: false });
  }

  failed(cmid: string): void {
    const p = this.pending.get(cmid);
    if (p) p.failed = true;
  }

  onFrame(entry: SocketEntry, text: string, now: number): void {
    this.frames++;
    const s = text.indexOf(SEQ);
    if (s >= 0) {
      const seq = Number.parseInt(text.slice(s + SEQ.length, s + SEQ.length + 20), 10);
      if (entry.lastSeq !== undefined) {
        if (seq <= entry.lastSeq) this.outOfOrder++;
        else if (seq > entry.lastSeq + 1) this.gaps++;
      }
      entry.lastSeq = seq;
    }
    const c = text.indexOf(CMID);
    const p = c >= 0 ? this.pending.get(text.slice(c + CMID.length, text.indexOf('"', c + CMID.length))) : undefined;
    if (!p) {
      this.unexpected++;
      return;
    }
    p.count++;
    if (p.count === 1) this.first.recordMs(now - p.t0);
    if (p.count === this.n) {
      this.last.recordMs(now - p.t0);
      this.completed++;
    }
  }

  /** Messages accepted by the server that have not reached every socket yet. */
  incomplete(): number {
    let n = 0;
    for (const p of this.pending.values()) if (!p.failed && p.count < this.n) n++;
    return n;
  }

  /** Frames that should have arrived and did not. */
  dropped(): number {
    let n = 0;
    for (const p of this.pending.values()) if (!p.failed) n += Math.max(0, this.n - p.count);
    return n;
  }
}

let runCounter = 0;

/**
 * Posts messages into one conversation at a constant rate (open loop) while `group` listens, then
 * waits up to `drainMs` for the last frames. Latency: intended POST time → frame on the last socket.
 */
export interface FanoutResult {
  sockets: number;
  rate: number;
  durationMs: number;
  messages: number;
  accepted: number;
  deliveriesPerSecond: number;
  framesReceived: number;
  latencyToLastSocketMs: LatencySummary;
  latencyToFirstSocketMs: LatencySummary;
  postLatencyMs: LatencySummary;
  errors: number;
  postErrors: Record<string, number>;
  socketsClosedUnexpectedly: number;
  droppedFrames: number;
  messagesIncomplete: number;
  outOfOrderFrames: number;
  seqGaps: number;
  unexpectedFrames: number;
  generatorMaxLagMs: number;
}

export async function fanoutRun({
  base,
  conversationId,
  senders,
  group,
  rate,
  durationMs,
  drainMs = 3000,
  path = "/messages",
}: {
  base: string;
  conversationId: number;
  senders: User[];
  group: SocketGroup;
  rate: number;
  durationMs: number;
  drainMs?: number;
  /** Where to POST the messages: Parley's `/messages`, or the socket floor's. */
  path?: string;
}): Promise<FanoutResult> {
  const tracker = new DeliveryTracker(group.size);
  group.onFrame = (entry, text, now) => tracker.onFrame(entry, text, now);
  const closedBefore = group.closedUnexpectedly;
  const tag = `r${process.pid}-${++runCounter}`;
  const post = new Histogram();
  const postErrors: Record<string, number> = {};
  const run = await openLoop({
    rate,
    durationMs,
    send: async (k, intended) => {
      const cmid = `${tag}-${k}`;
      tracker.expect(cmid, intended);
      const sender = senders[k % senders.length]!;
      const res = await request(base, "POST", path, {
        token: sender.token,
        body: messageBody(conversationId, cmid),
        timeoutMs: 10_000,
      });
      post.recordMs(performance.now() - intended);
      if (res.status !== 201) {
        const key = res.status === 0 ? `network: ${res.error?.message}` : String(res.status);
        postErrors[key] = (postErrors[key] ?? 0) + 1;
        tracker.failed(cmid);
      }
    },
  });
  await Promise.all(run.inFlight);
  const drainStart = performance.now();
  while (tracker.incomplete() > 0 && performance.now() - drainStart < drainMs) await sleep(10);
  group.onFrame = null;
  const postErrorCount = Object.values(postErrors).reduce((a, b) => a + b, 0);
  const accepted = run.sent - postErrorCount;
  return {
    sockets: group.size,
    rate,
    durationMs,
    messages: run.sent,
    accepted,
    deliveriesPerSecond: round((accepted * group.size) / (durationMs / 1000), 1),
    framesReceived: tracker.frames,
    latencyToLastSocketMs: tracker.last.summary(),
    latencyToFirstSocketMs: tracker.first.summary(),
    postLatencyMs: post.summary(),
    errors: postErrorCount + (group.closedUnexpectedly - closedBefore),
    postErrors,
    socketsClosedUnexpectedly: group.closedUnexpectedly - closedBefore,
    droppedFrames: tracker.dropped(),
    messagesIncomplete: tracker.incomplete(),
    outOfOrderFrames: tracker.outOfOrder,
    seqGaps: tracker.gaps,
    unexpectedFrames: tracker.unexpected,
    generatorMaxLagMs: round(run.maxLagMs),
  };
}

/** One message, timed to the first and the last socket. */
export interface Broadcast {
  sockets: number;
  toLastSocketMs: number | null;
  toFirstSocketMs: number | null;
  postMs: number | null;
  reachedAll: boolean;
  errors: number;
  postErrors: Record<string, number>;
  droppedFrames: number;
}

export async function broadcastOnce({
  base,
  conversationId,
  sender,
  group,
  drainMs = 10_000,
  path,
}: {
  base: string;
  conversationId: number;
  sender: User;
  group: SocketGroup;
  drainMs?: number;
  path?: string;
}): Promise<Broadcast> {
  const r = await fanoutRun({
    base,
    conversationId,
    senders: [sender],
    group,
    rate: 1,
    durationMs: 1000,
    drainMs,
    path,
  });
  return {
    sockets: r.sockets,
    toLastSocketMs: r.latencyToLastSocketMs.max,
    toFirstSocketMs: r.latencyToFirstSocketMs.max,
    postMs: r.postLatencyMs.max,
    reachedAll: r.messagesIncomplete === 0 && r.errors === 0,
    errors: r.errors,
    postErrors: r.postErrors,
    droppedFrames: r.droppedFrames,
  };
}
