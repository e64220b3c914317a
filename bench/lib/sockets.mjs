// WebSocket clients and delivery tracking for the fan-out, capacity and scale scenarios.
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { openLoop, request, round } from "./http.mjs";
import { messageBody } from "./seed.mjs";
import { Histogram } from "./stats.mjs";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A set of sockets on one conversation. kind "ws": the `ws` package without permessage-deflate
 * (measures the server's own work). kind "browser": Node's built-in WebSocket (undici), which,
 * like browsers, always offers permessage-deflate; the server decides whether to accept it.
 */
export class SocketGroup {
  constructor(kind) {
    this.kind = kind;
    this.sockets = [];
    this.onFrame = null;
    this.closedUnexpectedly = 0;
    this.closeCodes = {};
    this.extensions = new Set();
    this.closing = false;
  }

  get size() {
    return this.sockets.length;
  }

  /**
   * Opens `count` sockets (socket i uses tokens[i % tokens.length]) with at most `concurrency`
   * handshakes in flight. A socket counts as held once the object answers its "ping" with "pong"
   * (the auto-response only exists on sockets the Durable Object accepted). Stops at `deadlineMs`.
   */
  async open({ wsBase, conversationId, tokens, count, concurrency = 50, deadlineMs = 60_000, timeoutMs = 20_000 }) {
    const started = performance.now();
    const sizeBefore = this.sockets.length;
    const failures = {};
    let next = 0;
    let timedOut = false;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, count) }, async () => {
        while (next < count) {
          if (performance.now() - started > deadlineMs) {
            timedOut = true;
            return;
          }
          const i = next++;
          const url = `${wsBase}/ws?conversationId=${conversationId}&token=${tokens[i % tokens.length]}`;
          try {
            this.sockets.push(await this.#openOne(url, timeoutMs));
          } catch (err) {
            failures[err.message] = (failures[err.message] ?? 0) + 1;
          }
        }
      }),
    );
    const ms = performance.now() - started;
    const failed = Object.values(failures).reduce((a, b) => a + b, 0);
    return {
      requested: count,
      held: this.sockets.length - sizeBefore,
      failed,
      failures,
      notAttempted: count - (this.sockets.length - sizeBefore) - failed,
      timedOut,
      connectMs: round(ms),
      connectsPerSecond: round(((this.sockets.length - sizeBefore) / ms) * 1000, 1),
    };
  }

  #openOne(url, timeoutMs) {
    return new Promise((resolve, reject) => {
      const entry = { ws: null, index: -1, lastSeq: undefined };
      let admitted = false;
      let settled = false;
      const timer = setTimeout(() => fail("timeout"), timeoutMs);
      const fail = (why) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          if (this.kind === "ws") entry.ws.terminate();
          else entry.ws.close();
        } catch {}
        reject(new Error(why));
      };
      const onText = (text) => {
        if (!admitted) {
          if (text === "pong" && !settled) {
            admitted = settled = true;
            clearTimeout(timer);
            entry.index = this.sockets.length;
            this.extensions.add(entry.ws.extensions || "(none)");
            resolve(entry);
          }
          return;
        }
        if (text === "pong") return;
        this.onFrame?.(entry, text, performance.now());
      };
      const onClose = (code) => {
        if (!admitted) return fail(`closed ${code} before admission`);
        if (!this.closing) {
          this.closedUnexpectedly++;
          this.closeCodes[code] = (this.closeCodes[code] ?? 0) + 1;
        }
      };
      if (this.kind === "ws") {
        const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
        entry.ws = ws;
        ws.on("open", () => ws.send("ping"));
        ws.on("message", (data) => onText(data.toString()));
        ws.on("close", onClose);
        ws.on("error", (err) => fail(`error: ${err.code ?? err.message}`));
      } else {
        const ws = new globalThis.WebSocket(url);
        entry.ws = ws;
        ws.addEventListener("open", () => ws.send("ping"));
        ws.addEventListener("message", (ev) => onText(typeof ev.data === "string" ? ev.data : String(ev.data)));
        ws.addEventListener("close", (ev) => onClose(ev.code));
        ws.addEventListener("error", () => fail("error"));
      }
    });
  }

  /** Sockets still open. */
  openCount() {
    const OPEN = 1;
    return this.sockets.filter((s) => s.ws.readyState === OPEN).length;
  }

  async closeAll() {
    this.closing = true;
    for (const s of this.sockets) {
      try {
        if (this.kind === "ws") s.ws.terminate();
        else s.ws.close(1000);
      } catch {}
    }
    this.sockets = [];
    await sleep(200);
  }
}

const CMID = '"clientMessageId":"';
const SEQ = '"seq":';

/**
 * Counts each message's frames across the group's sockets: latency to the first and to the last
 * socket (from the POST's intended send time), per-socket seq order, and what never arrived.
 */
export class DeliveryTracker {
  constructor(sockets) {
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

  expect(cmid, intendedAt) {
    this.pending.set(cmid, { t0: intendedAt, count: 0, failed: false });
  }

  failed(cmid) {
    const p = this.pending.get(cmid);
    if (p) p.failed = true;
  }

  onFrame(entry, text, now) {
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
  incomplete() {
    let n = 0;
    for (const p of this.pending.values()) if (!p.failed && p.count < this.n) n++;
    return n;
  }

  /** Frames that should have arrived and did not. */
  dropped() {
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
export async function fanoutRun({ base, conversationId, senders, group, rate, durationMs, drainMs = 3000 }) {
  const tracker = new DeliveryTracker(group.size);
  group.onFrame = (entry, text, now) => tracker.onFrame(entry, text, now);
  const closedBefore = group.closedUnexpectedly;
  const tag = `r${process.pid}-${++runCounter}`;
  const post = new Histogram();
  const postErrors = {};
  const run = await openLoop({
    rate,
    durationMs,
    send: async (k, intended) => {
      const cmid = `${tag}-${k}`;
      tracker.expect(cmid, intended);
      const sender = senders[k % senders.length];
      const res = await request(base, "POST", "/messages", {
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
export async function broadcastOnce({ base, conversationId, sender, group, drainMs = 10_000 }) {
  const r = await fanoutRun({ base, conversationId, senders: [sender], group, rate: 1, durationMs: 1000, drainMs });
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
