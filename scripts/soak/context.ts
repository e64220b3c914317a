// One soak run: its options, its seeded random choices, the figures and anomalies it collects, the
// messages its clients sent, and the flags that end its loops. Everything else receives it.
import type WebSocket from "ws";
import type { MessageResponse } from "../../contract/index.ts";
import type { Client } from "./client.ts";
import { hardDeadlineMs, type Options } from "./options.ts";
import type { SoakServer } from "./server.ts";

/** A failure of the run itself (not a bug in this script): reported without a stack. */
export class SoakError extends Error {}

export type Message = MessageResponse;

/** The body of a POST /messages a client made. */
export interface SentBody {
  conversationId: number;
  /** Set afresh on every attempt: the epoch the client currently knows. */
  keyEpoch: number;
  nonce: string;
  ciphertext: string;
  authTag: string;
  signature: string;
  clientMessageId: string;
  associatedData?: string;
}

/** The mid-run removal: who, where, and the conversation's state around it. */
export interface Removal {
  conversationId: number;
  client: number;
  deviceId: number;
  /** lastSeq just before and just after the DELETE, and the epoch it left behind (needing rotation). */
  seqBefore: number;
  seqAfter: number;
  epochAtRemoval: number;
  /** Filled in by the checks: messages committed after the removal, and their epochs. */
  messagesAfter?: number;
  epochsAfter?: number[];
}

export interface Ack {
  messageId: number;
  seq: number;
  timestamp: string;
}

/** A message a client sent, by `${conversationId}/${senderId}/${clientMessageId}`. */
export interface SentMessage {
  key: string;
  client: Client;
  conversationId: number;
  body: SentBody;
  ack: Ack | null;
  answers201: number;
  raced?: boolean;
  /** Every POST of it (the first, races, the retry after the answer) is over. */
  settled?: boolean;
}

export interface Anomaly {
  kind: string;
  at: number;
  [detail: string]: unknown;
}

export function createStats() {
  return {
    sent: 0, // distinct messages (clientMessageIds) the clients created
    acknowledged: 0, // distinct messages that got a 201 or a 200
    answers201: 0,
    answers200: 0,
    lostAnswersRecovered: 0, // a 200 for a message whose earlier answer never arrived: committed, answer lost
    postAttempts: 0,
    retried: 0, // POST attempts beyond the first of a message, whatever the reason
    retriedAfterAck: 0, // re-POSTed after the answer arrived (must get 200 and the same ids)
    retriedConcurrently: 0, // extra POSTs racing the first one
    retriedAfterError: 0, // after a network error, a timeout, a 5xx, a 401 or a 429
    answersDiscarded: 0, // requests aborted on purpose after a few ms: the answer is "lost"
    networkErrors: 0,
    status5xx: 0,
    status429: 0,
    status401: 0,
    status409: 0, // POST /messages refused for its epoch (rotation required, or a stale keyEpoch)
    rotations: 0, // epochs committed by the clients
    rotationRaces: 0, // epoch commits that lost to another member's (409) or met a changed device set (422)
    refreshes: 0, // access tokens renewed with the refresh token
    refreshRefused: 0, // refresh tokens refused (e.g. a retry after a lost answer counts as reuse): logged in again
    receivedViaSocket: 0, // messages a client first got from a socket
    caughtUpViaRest: 0, // ... from a catch-up (`after`/`before`) during the run
    caughtUpInFinal: 0, // ... only in the final catch-up (0 unless delivery lagged)
    overlap: { socket: 0, rest: 0, final: 0 }, // messages that arrived again, by the later path (dropped by messageId)
    socketsOpened: 0,
    socketConnectFailures: 0,
    socketDropsByClient: 0,
    serverClosesLingering: 0, // server close frames whose connection was still open 1 s later (we ended it)
    socketCloses: {} as Record<string, number>,
    gapCatchUps: 0, // catch-ups started because a frame's seq jumped
    socketSeqJumps: 0, // on one socket, seq went up by more than one (allowed only as a socket's first frame)
    relogins: 0,
    serverRestarts: 0,
    restartDowntimeMs: [] as number[],
    restartsAt: [] as { killedAt: number; upAt: number }[], // seconds since the start of the soak
  };
}

export type Stats = ReturnType<typeof createStats>;

export class RunContext {
  readonly options: Options;
  readonly started = Date.now();
  readonly hardDeadlineMs: number;
  readonly stats: Stats = createStats();
  readonly anomalies: Anomaly[] = [];
  readonly sentMessages = new Map<string, SentMessage>();
  /** Sockets this script is closing itself (their close is not the server's). */
  readonly closingByUs = new WeakSet<WebSocket>();
  /** Set once the mid-run removal is done. */
  removal: Removal | null = null;
  /** A background loop failed (the hard deadline, or a bug in this script): the run fails. */
  fatalError: unknown = null;
  inFlightPosts = 0;
  /** No new messages, no more socket drops. */
  loadOver = false;
  socketsStopping = false;
  server!: SoakServer;
  #rngState: number;

  constructor(options: Options) {
    this.options = options;
    this.hardDeadlineMs = hardDeadlineMs(options);
    this.#rngState = options.seed;
  }

  /** mulberry32: the random choices are reproducible from the seed (timing is not). */
  rng(): number {
    this.#rngState = (this.#rngState + 0x6d2b79f5) >>> 0;
    let t = this.#rngState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  chance(p: number): boolean {
    return this.rng() < p;
  }

  between(lo: number, hi: number): number {
    return lo + Math.floor(this.rng() * (hi - lo + 1));
  }

  pick<T>(list: T[]): T {
    return list[Math.floor(this.rng() * list.length)]!;
  }

  backoff(attempt: number): number {
    return Math.min(1000, 50 * 2 ** attempt) * (0.5 + this.rng());
  }

  /** Seconds since the start, as printed. */
  elapsed(): string {
    return ((Date.now() - this.started) / 1000).toFixed(1);
  }

  log(...parts: unknown[]): void {
    console.log(`[soak ${this.elapsed().padStart(5)}s]`, ...parts);
  }

  anomaly(kind: string, detail: Record<string, unknown>): void {
    this.anomalies.push({ kind, at: Number(this.elapsed()), ...detail });
    if (this.options.verbose || this.anomalies.length <= 20) this.log(`ANOMALY ${kind}: ${JSON.stringify(detail)}`);
  }

  /** For `.catch(ctx.fatal)` on background loops. */
  readonly fatal = (err: unknown): void => {
    if (!this.fatalError) this.fatalError = err;
    if (!(err instanceof SoakError)) console.error(`soak: ${(err as Error)?.stack ?? err}`);
  };

  /** Called by every retry loop: ends them all once something failed for good or the time is up. */
  checkDeadline(): void {
    if (this.fatalError) throw this.fatalError;
    if (Date.now() - this.started > this.hardDeadlineMs)
      throw new SoakError(`the soak did not finish within ${this.hardDeadlineMs / 1000} s`);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
