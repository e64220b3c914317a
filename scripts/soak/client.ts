// A soak client: one user with an account key and one signed device, its session (access token and
// single-use refresh token), the epoch it sends under in each conversation, what it holds of each of
// its conversations (merged from its sockets and from catch-ups, duplicates dropped by messageId),
// and its sockets.
import { randomBytes } from "node:crypto";
import type WebSocket from "ws";
import { newIdentity, randomKeys } from "../../tools/wire/index.ts";
import type { Message, RunContext } from "./context.ts";
import { type ApiResponse, expect, NetworkError, request, requestRetrying } from "./http.ts";
import { PAGE } from "./options.ts";

export const b64 = (n: number): string => randomBytes(n).toString("base64");

export type Via = "socket" | "rest" | "final";

/** What a client holds of one conversation. */
export interface Held {
  id: number;
  held: Map<number, Message>; // messageId -> message
  bySeq: Map<number, number>; // seq -> messageId
  contiguousSeq: number; // every seq 1..contiguousSeq is held
  contiguousId: number; // the messageId of contiguousSeq: the `after` cursor
  catchUpWanted: boolean;
  catchUpVia?: Via;
  catchUpRunning: Promise<void> | null;
  lastFrameAt?: number;
  /** The epoch this client sends under (as last learnt). */
  epoch: number;
  /** No new sends: a removal of this client is coming. */
  leaving: boolean;
  /** This client was removed from the conversation: what it may hold ends at `seqAfter`. */
  removed?: { seqBefore: number; seqAfter: number; caughtUpTo: number };
}

/** One of a client's sockets: a conversation's ("room") or the user's inbox. */
export interface SocketTarget {
  kind: "room" | "inbox";
  conv?: Held;
  ws: WebSocket | null;
  ready: boolean;
  lastSeq: Map<number, number>;
  openedAt?: number;
  loop?: Promise<void>;
  /** Stopped for good (its conversation removed this client). */
  done?: boolean;
}

export class Client {
  readonly ctx: RunContext;
  readonly index: number;
  readonly username: string;
  readonly password = `pw-${b64(12)}`;
  /** Conversation sockets, or one inbox socket. */
  readonly mode: "rooms" | "inbox";
  readonly identity = newIdentity("soak");
  userId = 0;
  deviceId = 0;
  token = "";
  refreshToken = "";
  renewPromise: Promise<void> | null = null;
  counter = 0;
  readonly convs = new Map<number, Held>();
  readonly sockets: SocketTarget[] = [];
  readonly pending = new Set<Promise<void>>();

  constructor(ctx: RunContext, index: number) {
    this.ctx = ctx;
    this.index = index;
    this.username = `soak${index}_${ctx.options.seed.toString(36)}_${randomBytes(3).toString("hex")}`.slice(0, 32);
    this.mode = index % 2 === 0 ? "rooms" : "inbox";
  }

  async register(): Promise<void> {
    const { accountKey, device } = this.identity;
    const res = await requestRetrying(this.ctx, "POST", "/auth/register", {
      body: { username: this.username, password: this.password, accountKey, device },
    });
    const registered = expect(res, 201, `register ${this.username}`);
    this.userId = registered.userId;
    this.deviceId = registered.deviceId;
    await this.login();
  }

  /** A new session on this client's device. */
  async login(): Promise<void> {
    const res = await requestRetrying(this.ctx, "POST", "/auth/login", {
      body: { username: this.username, password: this.password, deviceId: this.deviceId },
    });
    this.adopt(expect(res, 200, `login ${this.username}`));
  }

  private adopt(session: { accessToken: string; refreshToken: string }): void {
    this.token = session.accessToken;
    this.refreshToken = session.refreshToken;
  }

  /**
   * After a 401, a 1008 or a 4001: one renewal shared by everything that saw the old token refused.
   * The refresh token is spent (single use); if the server refuses it (its answer was lost to a
   * SIGKILL and the retry counts as reuse, which ends the session), the client logs in again.
   */
  async renew(refused: string): Promise<void> {
    if (this.token !== refused) return;
    if (!this.renewPromise) {
      this.renewPromise = (async () => {
        try {
          const res = await requestRetrying(this.ctx, "POST", "/auth/refresh", {
            body: { refreshToken: this.refreshToken },
          });
          if (res.status === 200) {
            this.adopt(res.body);
            this.ctx.stats.refreshes += 1;
            return;
          }
          expect(res, 401, `refresh ${this.username}`);
          this.ctx.stats.refreshRefused += 1;
          await this.login();
          this.ctx.stats.relogins += 1;
        } finally {
          this.renewPromise = null;
        }
      })();
    }
    await this.renewPromise;
  }

  join(conversationId: number): void {
    this.convs.set(conversationId, {
      id: conversationId,
      held: new Map(),
      bySeq: new Map(),
      contiguousSeq: 0,
      contiguousId: 0,
      catchUpWanted: false,
      catchUpRunning: null,
      epoch: 1,
      leaving: false,
    });
  }

  /**
   * A 409 on POST /messages: `rotation required` → commit the next epoch with a (random) wrap for
   * exactly the conversation's current devices; a stale `keyEpoch` → learn the current one. A
   * commit that loses a race (409) or meets a changed device set (422) starts over.
   */
  async resolveConflict(conv: Held, refusal: any): Promise<void> {
    const { ctx } = this;
    const rotate = (refusal?.error?.details ?? []).some((d: { path: string }) => d.path === "epoch");
    for (;;) {
      const current = expect(await this.authed("GET", `/conversations/${conv.id}`), 200, "get conversation");
      conv.epoch = current.epoch;
      if (!rotate || !current.rotationNeeded) return;
      const devices = expect(await this.authed("GET", `/conversations/${conv.id}/devices`), 200, "devices");
      const res = await this.authed("POST", `/conversations/${conv.id}/epochs`, {
        epoch: current.epoch + 1,
        keys: randomKeys(devices.map((d: { deviceId: number }) => d.deviceId)),
      });
      if (res.status === 201) {
        conv.epoch = current.epoch + 1;
        ctx.stats.rotations += 1;
        return;
      }
      if (res.status !== 409 && res.status !== 422) expect(res, 201, "commit epoch");
      ctx.stats.rotationRaces += 1; // another member rotated first (or a committed retry of ours): look again
    }
  }

  /** An authenticated request, retried through network errors, 5xx, 429 and refused tokens. */
  async authed(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const { ctx } = this;
    for (let attempt = 0; ; attempt++) {
      ctx.checkDeadline();
      const token = this.token;
      try {
        const res = await request(ctx, method, path, { token, body });
        if (res.status === 401) {
          ctx.stats.status401 += 1;
          await this.renew(token);
          continue;
        }
        if (res.status === 429 || res.status >= 500) {
          ctx.stats[res.status === 429 ? "status429" : "status5xx"] += 1;
          await sleepFor(
            res.status === 429 ? 1000 * Number(res.headers.get("Retry-After") ?? 1) : ctx.backoff(attempt),
          );
          continue;
        }
        return res;
      } catch (err) {
        if (!(err instanceof NetworkError)) throw err;
        await sleepFor(ctx.backoff(attempt));
      }
    }
  }

  // --- receiving ------------------------------------------------------------------------------

  /** Merges one message into what the client holds, dropping duplicates by messageId. */
  accept(conv: Held, m: Message, via: Via): void {
    const { ctx } = this;
    const sent = ctx.sentMessages.get(`${m.conversationId}/${m.senderId}/${m.clientMessageId}`);
    const had = conv.held.get(m.messageId);
    if (had) {
      if (had.seq !== m.seq)
        ctx.anomaly("messageChangedSeq", { client: this.index, messageId: m.messageId, seqs: [had.seq, m.seq] });
      ctx.stats.overlap[via] += 1;
      return;
    }
    if (conv.bySeq.has(m.seq)) {
      ctx.anomaly("twoMessagesOneSeq", {
        client: this.index,
        conversationId: conv.id,
        seq: m.seq,
        messageIds: [conv.bySeq.get(m.seq), m.messageId],
      });
      return;
    }
    if (
      sent &&
      (sent.body.ciphertext !== m.ciphertext ||
        sent.body.nonce !== m.nonce ||
        sent.body.authTag !== m.authTag ||
        (sent.body.associatedData ?? null) !== m.associatedData)
    ) {
      ctx.anomaly("bytesChanged", { client: this.index, messageId: m.messageId, clientMessageId: m.clientMessageId });
    }
    conv.held.set(m.messageId, m);
    conv.bySeq.set(m.seq, m.messageId);
    while (conv.bySeq.has(conv.contiguousSeq + 1)) {
      conv.contiguousSeq += 1;
      conv.contiguousId = conv.bySeq.get(conv.contiguousSeq)!;
    }
    if (via === "socket") ctx.stats.receivedViaSocket += 1;
    else if (via === "rest") ctx.stats.caughtUpViaRest += 1;
    else ctx.stats.caughtUpInFinal += 1;
  }

  onFrame(target: SocketTarget, data: Buffer): void {
    const { ctx } = this;
    const text = data.toString();
    if (text === "pong") return;
    let frame: { type?: string; data?: Message };
    try {
      frame = JSON.parse(text);
    } catch {
      ctx.anomaly("notJson", { client: this.index, text: text.slice(0, 80) });
      return;
    }
    if (frame.type !== "newMessage" || !frame.data) return; // conversationCreated, membership events, errors
    const m = frame.data;
    const conv = this.convs.get(m.conversationId);
    if (!conv || (target.kind === "room" && target.conv !== conv)) {
      ctx.anomaly("foreignMessage", { client: this.index, conversationId: m.conversationId, socket: target.kind });
      return;
    }
    // What one socket receives: increasing seq, each once (a jump only on its first frame).
    const last = target.lastSeq.get(conv.id);
    if (last !== undefined) {
      if (m.seq <= last)
        ctx.anomaly("socketOrder", {
          client: this.index,
          conversationId: conv.id,
          socket: target.kind,
          seq: m.seq,
          after: last,
        });
      else if (m.seq > last + 1) ctx.stats.socketSeqJumps += 1;
    }
    target.lastSeq.set(conv.id, Math.max(last ?? 0, m.seq));
    conv.lastFrameAt = Number(ctx.elapsed());
    this.accept(conv, m, "socket");
    // The recipe: a seq that jumps past what we hold means something was missed: fetch `after`.
    if (conv.held.size > conv.contiguousSeq) {
      if (!conv.catchUpRunning) ctx.stats.gapCatchUps += 1;
      this.catchUp(conv, "rest");
    }
  }

  /** Coalesced per conversation: one fetch at a time, re-run if asked again meanwhile. Never rejects. */
  catchUp(conv: Held, via: Via): Promise<void> {
    if (conv.removed) return Promise.resolve(); // the history is closed to a removed member
    conv.catchUpWanted = true;
    conv.catchUpVia = via;
    if (!conv.catchUpRunning) {
      const run = async () => {
        try {
          while (conv.catchUpWanted) {
            conv.catchUpWanted = false;
            await this.fetchMissing(conv, conv.catchUpVia ?? via);
          }
        } catch (err) {
          this.ctx.anomaly("catchUpFailed", {
            client: this.index,
            conversationId: conv.id,
            error: String((err as Error)?.message ?? err),
          });
        } finally {
          conv.catchUpRunning = null;
        }
      };
      conv.catchUpRunning = run();
    }
    return conv.catchUpRunning;
  }

  /** `after` the last message held without a gap, page by page until a short page. */
  async fetchMissing(conv: Held, via: Via): Promise<void> {
    if (conv.contiguousId === 0) {
      // `after` must be a positive id: from nothing, walk back from the newest with `before`.
      await this.walkBack(conv, via);
      return;
    }
    let after = conv.contiguousId;
    for (;;) {
      const res = await this.authed("GET", `/conversations/${conv.id}/messages?after=${after}&limit=${PAGE}`);
      if (res.status === 403 && (conv.removed || conv.leaving)) return; // removed meanwhile
      const page: Message[] = expect(res, 200, `client ${this.index} GET after`);
      for (const m of page) this.accept(conv, m, via);
      if (page.length < PAGE) return;
      after = page.at(-1)!.messageId;
    }
  }

  async walkBack(conv: Held, via: Via): Promise<void> {
    let before = 0;
    for (;;) {
      const qs = before ? `before=${before}&limit=${PAGE}` : `limit=${PAGE}`;
      const res = await this.authed("GET", `/conversations/${conv.id}/messages?${qs}`);
      if (res.status === 403 && (conv.removed || conv.leaving)) return; // removed meanwhile
      const page: Message[] = expect(res, 200, `client ${this.index} GET before`);
      for (const m of page) this.accept(conv, m, via);
      if (page.length < PAGE) return;
      before = page.at(-1)!.messageId;
    }
  }

  /** The inbox recipe: GET /conversations, then `after` where `lastMessageId` is beyond what we hold. */
  async inboxCatchUp(): Promise<void> {
    // The list is paged (`{ conversations, nextCursor }`): every page.
    const list: { conversationId: number; lastMessageId: number | null }[] = [];
    let cursor: string | null = null;
    do {
      const qs: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await this.authed("GET", `/conversations?limit=100${qs}`);
      if (res.status !== 200) {
        this.ctx.anomaly("catchUpFailed", { client: this.index, status: res.status, body: res.body });
        return;
      }
      list.push(...res.body.conversations);
      cursor = res.body.nextCursor;
    } while (cursor !== null);
    const tasks: Promise<void>[] = [];
    for (const c of list) {
      const conv = this.convs.get(c.conversationId);
      if (!conv || conv.removed) {
        this.ctx.anomaly("foreignConversation", { client: this.index, conversationId: c.conversationId });
        continue;
      }
      if (c.lastMessageId !== null && c.lastMessageId > conv.contiguousId) tasks.push(this.catchUp(conv, "rest"));
    }
    await Promise.all(tasks);
  }
}

const sleepFor = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
