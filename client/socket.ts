/**
 * Live delivery: a WebSocket that reconnects (the conversation subscription on top of it that loses
 * nothing across disconnects is in `feed.ts`).
 *
 * Reconnecting: full-jitter exponential backoff (reset once a socket is admitted, i.e. answers the
 * first `ping`, and caught up), and a token asked afresh from the token provider for each attempt.
 * The server's 1008 closes stop the subscription (`policy`), except a 1008 whose reason is one of
 * the contract's `CREDENTIAL_CLOSE_REASONS` (an invalid or expired token), which is retried once
 * with a forced token refresh (`unauthorized` if that fails too); 4003 stops
 * it (`removed`); 4001 stops it (`session-ended`: the session ended or the device was revoked); so does a catch-up the API refuses with a 4xx other than 408/429. Every other
 * close (1000, 1001, 1006, 1011, 1013, …) is reconnected.
 */

import {
  CLOSE,
  CREDENTIAL_CLOSE_REASONS,
  type ServerFrame,
  TYPING_INTERVAL_MS,
  type TypingFrame,
} from "../contract/index.ts";
import { backoffDelay, ParleyError, type TokenProvider } from "./http.ts";

/** The part of the WebSocket API the library uses (browsers', Node's and Workers' all fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: never) => void): void;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export const defaultWebSocketFactory: WebSocketFactory = (url) => {
  const Ctor = (globalThis as unknown as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!Ctor) throw new Error("no global WebSocket in this runtime: pass the `webSocket` option");
  return new Ctor(url);
};

export interface ReconnectPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Consecutive failed attempts before giving up (default: never give up). */
  maxAttempts: number;
  /** How often a `ping` is sent; a socket silent for two intervals is considered dead. */
  pingIntervalMs: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  maxAttempts: Number.POSITIVE_INFINITY,
  pingIntervalMs: 30_000,
};

/** Why a subscription stopped for good. */
export type StopCause =
  /** `close()` was called. */
  | "client"
  /** The user was removed from the conversation (4003). */
  | "removed"
  /** The server refused the socket by policy (1008: not a participant, flooding, …). */
  | "policy"
  /** The token was refused even after a forced refresh, or no token could be obtained. */
  | "unauthorized"
  /** `maxAttempts` consecutive attempts failed. */
  | "gave-up"
  /** The server closed with 4001: the session ended or the device was revoked. */
  | "session-ended";

export interface CloseInfo {
  cause: StopCause;
  /** The last WebSocket close code (1000 for `client`). */
  code: number;
  /** The server's close reason, when it gave one. */
  reason: string;
  /** A sentence for people. */
  message: string;
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface LiveOptions {
  reconnect?: Partial<ReconnectPolicy>;
  /** Called when the subscription stops for good (never for a disconnect it recovers from). */
  onClose?: (info: CloseInfo) => void;
  /** Errors that do not stop the subscription: a failed catch-up, a throwing callback, a bad frame. */
  onError?: (error: unknown) => void;
  onStateChange?: (state: ConnectionState) => void;
  /** For tests: the source of jitter. */
  random?: () => number;
}

export interface Subscription {
  readonly state: ConnectionState;
  /** Resolves when the subscription stops for good. */
  readonly closed: Promise<CloseInfo>;
  close(): void;
  /**
   * Sends `{ type: "typing" }` on the socket if it is open (false otherwise): on a conversation
   * socket `conversationId` may be left out; the inbox needs it. The server relays at most one per
   * 2 s per socket, so calling it on every keystroke is fine.
   */
  sendTyping(conversationId?: number): boolean;
}

export interface SocketHandlers {
  /** The socket is admitted (its first frame arrived): runs before frames are handled (they wait in order). */
  onOpen(): Promise<void>;
  onFrame(frame: ServerFrame): Promise<void>;
}

const STOP_MESSAGES: Record<StopCause, string> = {
  client: "closed by the client",
  removed: "you were removed from this conversation",
  policy: "the server refused the connection",
  unauthorized: "the server refused the access token; log in again",
  "gave-up": "could not reconnect",
  "session-ended": "the session ended or this device was revoked; log in again",
};

export interface LiveConnectionDeps {
  /** The socket's URL, given a fresh access token (e.g. after exchanging it for a ticket). */
  url: (token: string) => string | Promise<string>;
  getToken: TokenProvider;
  createSocket: WebSocketFactory;
  handlers: SocketHandlers;
  options: LiveOptions;
  /** Called when the server closes with 4001 (before `onClose`). */
  onSessionEnded?: (reason: string) => void;
}

/** One logical live connection: a chain of WebSockets, each replacing the one that dropped. */
export class LiveConnection implements Subscription {
  private readonly policy: ReconnectPolicy;
  private readonly random: () => number;
  private ws: WebSocketLike | undefined;
  private lastTypingAt = Number.NEGATIVE_INFINITY;
  private attempts = 0;
  private tokenRetried = false;
  private forceRefresh = false;
  private stopped = false;
  private currentState: ConnectionState = "connecting";
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly resolveClosed: (info: CloseInfo) => void;
  private readonly deps: LiveConnectionDeps;
  readonly closed: Promise<CloseInfo>;

  constructor(deps: LiveConnectionDeps) {
    this.deps = deps;
    this.policy = { ...DEFAULT_RECONNECT, ...deps.options.reconnect };
    this.random = deps.options.random ?? Math.random;
    let resolveClosed: (info: CloseInfo) => void = () => {};
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    this.resolveClosed = resolveClosed;
    void this.connect();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** See `Subscription.sendTyping`; throttled here too (one per TYPING_INTERVAL_MS), so nothing is sent in vain. */
  sendTyping(conversationId?: number): boolean {
    const ws = this.ws;
    if (!ws || this.currentState !== "open" || ws.readyState !== 1) return false;
    const now = Date.now();
    if (now - this.lastTypingAt < TYPING_INTERVAL_MS) return true;
    this.lastTypingAt = now;
    const frame: TypingFrame = conversationId === undefined ? { type: "typing" } : { type: "typing", conversationId };
    ws.send(JSON.stringify(frame));
    return true;
  }
  close(): void {
    this.stop("client", CLOSE.normal, "");
    this.ws?.close(CLOSE.normal, "client closed");
  }

  private setState(state: ConnectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.safely(() => this.deps.options.onStateChange?.(state));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.reportError(err);
    }
  }

  private reportError(err: unknown): void {
    try {
      this.deps.options.onError?.(err);
    } catch {
      // A throwing error handler must not break the connection.
    }
  }

  private stop(cause: StopCause, code: number, reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.setState("closed");
    const info: CloseInfo = {
      cause,
      code,
      reason,
      message: reason ? `${STOP_MESSAGES[cause]} (${code}: ${reason})` : STOP_MESSAGES[cause],
    };
    this.safely(() => this.deps.options.onClose?.(info));
    this.resolveClosed(info);
  }

  /** Runs `task` after every earlier one, so frames and catch-ups are handled strictly in order. */
  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err) => this.reportError(err));
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let token: string;
    try {
      token = await this.deps.getToken({ forceRefresh: this.forceRefresh });
    } catch (err) {
      this.reportError(err);
      this.stop("unauthorized", CLOSE.policy, err instanceof Error ? err.message : "no access token");
      return;
    }
    if (this.stopped) return;
    this.forceRefresh = false;
    let url: string;
    try {
      url = await this.deps.url(token);
    } catch (err) {
      this.reportError(err);
      const status = err instanceof ParleyError ? err.status : 0;
      if (status === 401 || status === 403) {
        this.stop("unauthorized", CLOSE.policy, err instanceof Error ? err.message : "");
      } else this.scheduleReconnect(1006, "");
      return;
    }
    if (this.stopped) return;
    let ws: WebSocketLike;
    try {
      ws = this.deps.createSocket(url);
    } catch (err) {
      this.reportError(err);
      this.scheduleReconnect(1006, "");
      return;
    }
    this.ws = ws;
    let admitted = false;
    let heardSincePing = true;

    ws.addEventListener("open", () => {
      if (this.ws !== ws || this.stopped) return;
      // A refused socket is opened too, then closed at once: the first frame (the answer to this
      // ping) proves admission, and only then does the catch-up start.
      ws.send("ping");
      heardSincePing = false;
      if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => {
        if (!heardSincePing) return this.abandon(ws, "no answer to ping"); // a half-open connection
        heardSincePing = false;
        try {
          ws.send("ping");
        } catch {
          // Closing already.
        }
      }, this.policy.pingIntervalMs);
    });

    ws.addEventListener("message", (event: { data: unknown }) => {
      if (this.ws !== ws || this.stopped) return;
      heardSincePing = true;
      if (!admitted) {
        admitted = true;
        this.tokenRetried = false;
        this.enqueue(async () => {
          try {
            await this.deps.handlers.onOpen();
            if (this.ws === ws && !this.stopped) {
              this.attempts = 0; // connected and caught up: the backoff starts over
              this.setState("open");
            }
          } catch (err) {
            this.reportError(err);
            const status = err instanceof ParleyError ? err.status : 0;
            if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
              // Refused by the API itself (the token, no longer a participant, …): repeating cannot help.
              ws.close(CLOSE.normal, "refused");
              this.stop(status === 401 ? "unauthorized" : "policy", 1008, err instanceof Error ? err.message : "");
              return;
            }
            // Could not catch up: start over on a new socket, which catches up again.
            this.abandon(ws, "catch-up failed");
          }
        });
      }
      if (typeof event.data !== "string" || event.data === "pong") return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(event.data) as ServerFrame;
      } catch (err) {
        this.reportError(err);
        return;
      }
      if (frame.type === "error") {
        this.reportError(new Error(`server: ${frame.error.code}: ${frame.error.message}`));
        return;
      }
      this.enqueue(() => this.deps.handlers.onFrame(frame));
    });

    ws.addEventListener("close", (event: { code: number; reason: string }) => {
      if (this.ws !== ws) return;
      if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
      this.ws = undefined;
      if (this.stopped) return;
      const { code, reason } = event;
      if (code === CLOSE.removed) return this.stop("removed", code, reason);
      if (code === CLOSE.sessionEnded) {
        this.safely(() => this.deps.onSessionEnded?.(reason));
        return this.stop("session-ended", code, reason);
      }
      if (code === CLOSE.policy) {
        // The reason is one of the contract's fixed values, compared whole, never searched.
        const credential = CREDENTIAL_CLOSE_REASONS.includes(reason);
        if (credential && !this.tokenRetried) {
          this.tokenRetried = true;
          this.forceRefresh = true;
          this.setState("reconnecting");
          void this.connect();
          return;
        }
        return this.stop(credential ? "unauthorized" : "policy", code, reason);
      }
      this.scheduleReconnect(code, reason);
    });
  }

  /** Drops `ws` without waiting for its close event (which a dead network may delay) and reconnects. */
  private abandon(ws: WebSocketLike, reason: string): void {
    if (this.ws !== ws || this.stopped) return;
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.ws = undefined;
    try {
      ws.close(4000, reason);
    } catch {
      // Already closing.
    }
    this.scheduleReconnect(4000, reason);
  }

  private scheduleReconnect(code: number, reason: string): void {
    if (this.stopped) return;
    this.attempts += 1;
    if (this.attempts > this.policy.maxAttempts) {
      this.stop("gave-up", code, reason);
      return;
    }
    this.setState("reconnecting");
    const delay = backoffDelay(this.attempts - 1, this.policy.initialDelayMs, this.policy.maxDelayMs, this.random);
    this.timer = setTimeout(() => void this.connect(), delay);
  }
}
