// WebSocket clients for the fan-out, capacity and scale scenarios: a group of sockets on one conversation.
import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import { round } from "./http.ts";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type SocketKind = "ws" | "browser";

/** One admitted socket; `lastSeq` is the last seq it received. */
export interface SocketEntry {
  ws: WebSocket | globalThis.WebSocket;
  index: number;
  lastSeq: number | undefined;
}

type FrameHandler = (entry: SocketEntry, text: string, now: number) => void;

export interface ConnectResult {
  requested: number;
  held: number;
  failed: number;
  failures: Record<string, number>;
  notAttempted: number;
  timedOut: boolean;
  connectMs: number;
  connectsPerSecond: number;
}

/**
 * A set of sockets on one conversation. kind "ws": the `ws` package without permessage-deflate
 * (measures the server's own work). kind "browser": Node's built-in WebSocket (undici), which,
 * like browsers, always offers permessage-deflate; the server decides whether to accept it.
 */
export class SocketGroup {
  readonly kind: SocketKind;
  sockets: SocketEntry[];
  onFrame: FrameHandler | null;
  closedUnexpectedly: number;
  closeCodes: Record<string, number>;
  extensions: Set<string>;
  closing: boolean;

  constructor(kind: SocketKind) {
    this.kind = kind;
    this.sockets = [];
    this.onFrame = null;
    this.closedUnexpectedly = 0;
    this.closeCodes = {};
    this.extensions = new Set();
    this.closing = false;
  }

  get size(): number {
    return this.sockets.length;
  }

  /**
   * Opens `count` sockets (socket i uses tokens[i % tokens.length]) with at most `concurrency`
   * handshakes in flight. A socket counts as held once the object answers its "ping" with "pong"
   * (the auto-response only exists on sockets the Durable Object accepted). Stops at `deadlineMs`.
   */
  async open({
    wsBase,
    conversationId,
    tokens,
    count,
    concurrency = 50,
    deadlineMs = 60_000,
    timeoutMs = 20_000,
    path = "/ws",
  }: {
    wsBase: string;
    /** Parley's `/ws`, or the socket floor's. */
    path?: string;
    conversationId: number;
    tokens: string[];
    count: number;
    concurrency?: number;
    deadlineMs?: number;
    timeoutMs?: number;
  }): Promise<ConnectResult> {
    const started = performance.now();
    const sizeBefore = this.sockets.length;
    const failures: Record<string, number> = {};
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
          const url = `${wsBase}${path}?conversationId=${conversationId}&token=${tokens[i % tokens.length]}`;
          try {
            this.sockets.push(await this.#openOne(url, timeoutMs));
          } catch (e) {
            const err = e as Error;
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

  #openOne(url: string, timeoutMs: number): Promise<SocketEntry> {
    return new Promise((resolve, reject) => {
      const entry = { ws: null, index: -1, lastSeq: undefined } as unknown as SocketEntry;
      let admitted = false;
      let settled = false;
      const timer = setTimeout(() => fail("timeout"), timeoutMs);
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          if (entry.ws instanceof WebSocket) entry.ws.terminate();
          else entry.ws.close();
        } catch {}
        reject(new Error(why));
      };
      const onText = (text: string) => {
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
      const onClose = (code: number) => {
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
  openCount(): number {
    const OPEN = 1;
    return this.sockets.filter((s) => s.ws.readyState === OPEN).length;
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    for (const s of this.sockets) {
      try {
        if (s.ws instanceof WebSocket) s.ws.terminate();
        else s.ws.close(1000);
      } catch {}
    }
    this.sockets = [];
    await sleep(200);
  }
}
