import { DurableObject } from "cloudflare:workers";
import { CLOSE, CLOSE_REASON, PING, PONG, type ServerFrame, TYPING_INTERVAL_MS } from "../../contract";
import { config } from "../config";
import type { SequencedFrame, SocketAttachment } from "./frames";
import { Sequencer } from "./sequencer";
import {
  deviceTag,
  IDENTITY_HEADER,
  identityOf,
  reciprocateClose,
  refuseSocket,
  safeClose,
  socketTags,
  updateIdentity,
} from "./sockets";

/** How long a frame waits behind a gap before the missing messages are read from D1. */
export const GAP_WAIT_MS = 250;
/** The longest wait between two rounds of gap filling that make no progress (the wait doubles). */
export const MAX_GAP_WAIT_MS = 30_000;
/**
 * Rounds without progress (≈1 minute in all) before the held frames are released past their gap:
 * D1 keeps failing or lacks the messages, and clients fetch a `seq` gap over REST anyway.
 */
export const MAX_GAP_ROUNDS = 8;

const GAP_PENDING = "gap:pending";
const GAP_ROUND = "gap:round";

const NOT_A_COMMAND: ServerFrame = {
  type: "error",
  error: { code: "bad_request", message: 'a client may send only "ping" or a "typing" frame' },
};

export const typingRefused = (message: string): ServerFrame => ({
  type: "error",
  error: { code: "forbidden", message },
});

/** A `typing` client frame's conversation id (`null`: left out), or `undefined` if it is not one. */
function typingFrame(message: string | ArrayBuffer): number | null | undefined {
  if (typeof message !== "string" || message.length > 200) return undefined;
  let frame: unknown;
  try {
    frame = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof frame !== "object" || frame === null || (frame as { type?: unknown }).type !== "typing") return undefined;
  const id = (frame as { conversationId?: unknown }).conversationId;
  if (id === undefined) return null;
  return typeof id === "number" && Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

/**
 * What the conversation room and the user inbox share: hibernatable sockets admitted by the Worker
 * (identity in the attachment, user id as tag), `ping`/`pong` without waking, the error frame for
 * anything else, reciprocated closes, and a storage-backed Sequencer with an alarm for gaps.
 */
export abstract class SocketHub extends DurableObject<Env> {
  protected readonly sequencer: Sequencer;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sequencer = new Sequencer(ctx.storage.kv);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  }

  /** The upgrade the Worker forwards once it has checked the token (and the participation). */
  override async fetch(request: Request): Promise<Response> {
    const identity = JSON.parse(request.headers.get(IDENTITY_HEADER) ?? "null") as SocketAttachment | null;
    if (!identity) return new Response(null, { status: 400 });
    const refusal = await this.refusal(identity);
    if (refusal) return refusal;
    const perDevice = this.ctx.getWebSockets(deviceTag(identity.deviceId)).length;
    if (
      perDevice >= config(this.env).maxSocketsPerDevice ||
      this.ctx.getWebSockets().length >= config(this.env).maxSocketsPerObject
    ) {
      return refuseSocket(CLOSE.tryAgainLater, CLOSE_REASON.tooManySockets);
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, socketTags(identity));
    server.serializeAttachment({ ...identity, socketId: crypto.randomUUID() } satisfies SocketAttachment);
    await this.onAccepted(request);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Closes every socket filed under one of `tags` (an ended session, a revoked device) with `code`. */
  async closeSockets(tags: string[], code: number, reason: string): Promise<number> {
    let closed = 0;
    for (const tag of tags) {
      for (const ws of this.ctx.getWebSockets(tag)) {
        safeClose(ws, code, reason);
        closed += 1;
      }
    }
    return closed;
  }

  /**
   * Those of `deviceIds` with a socket here that the next frame would reach: open, and its token
   * not expired (such a socket is closed at the next send instead). Push asks this to skip devices
   * that will see a message live; a look at the object's own sockets, no storage read.
   */
  async devicesWithSockets(deviceIds: number[]): Promise<number[]> {
    const now = Date.now() / 1000;
    return deviceIds.filter((id) =>
      this.ctx.getWebSockets(deviceTag(id)).some((ws) => ws.readyState === WebSocket.OPEN && identityOf(ws).exp > now),
    );
  }

  /** A reason to refuse a socket the Worker admitted, as a refusing 101; none by default. */
  protected async refusal(_identity: SocketAttachment): Promise<Response | undefined> {
    return undefined;
  }

  /** Runs before the 101 goes back, so the client sees its socket open only once this is done. */
  protected async onAccepted(_request: Request): Promise<void> {}

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const identity = identityOf(ws);
    if (identity.exp <= Date.now() / 1000) return safeClose(ws, CLOSE.policy, CLOSE_REASON.tokenExpired);
    // Decided before the first await, so frames that arrive together cannot both pass the throttle.
    const { reply, relay } = this.typingDecision(ws, identity, typingFrame(message));
    if (config(this.env).rateLimits) {
      const { success } = await this.env.FRAME_RATE_LIMITER.limit({ key: `frames:${identity.socketId}` });
      if (!success) return safeClose(ws, CLOSE.policy, CLOSE_REASON.tooManyFrames);
    }
    if (reply) ws.send(JSON.stringify(reply));
    if (relay !== undefined) await this.relayTyping(relay, identity.userId);
  }

  /**
   * Typing is relayed from what the object already holds (the socket's attachment, its own storage):
   * never stored, never a D1 query. Refusals answer with the error frame; the throttle drops silently.
   */
  private typingDecision(
    ws: WebSocket,
    identity: SocketAttachment,
    typing: number | null | undefined,
  ): { reply?: ServerFrame; relay?: number } {
    if (typing === undefined) return { reply: NOT_A_COMMAND };
    const target = this.typingTarget(identity, typing);
    if (typeof target !== "number") return { reply: target };
    const now = Date.now();
    if (identity.typingAt !== undefined && now - identity.typingAt < TYPING_INTERVAL_MS) return {};
    updateIdentity(ws, { typingAt: now });
    return { relay: target };
  }

  /** The conversation a `typing` frame (its id, or `null` if left out) is about, or the error frame refusing it. */
  protected abstract typingTarget(identity: SocketAttachment, conversationId: number | null): number | ServerFrame;

  /** Relays `typing` of `userId` in `conversationId` to the other participants' sockets. */
  protected abstract relayTyping(conversationId: number, userId: number): Promise<void>;

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    reciprocateClose(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    safeClose(ws, CLOSE.serverError, CLOSE_REASON.socketError);
  }

  /** Reads the missing messages of every gap from D1 and delivers them; whether anything moved. */
  protected abstract fillGaps(): Promise<boolean>;

  /** Sends frames released past a gap. */
  protected abstract deliverFrames(frames: SequencedFrame[]): void;

  /** Runs the alarm at `at` unless it is already due sooner (the alarm serves more than gaps). */
  protected async armAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || at < current) await this.ctx.storage.setAlarm(at);
  }

  /** Runs a gap-filling round in a moment if a frame was just held and no round is pending. */
  protected async scheduleGapFill(held: boolean): Promise<void> {
    const kv = this.ctx.storage.kv;
    if (!held || kv.get(GAP_PENDING) !== undefined) return;
    kv.put(GAP_PENDING, true);
    await this.armAlarm(Date.now() + GAP_WAIT_MS);
  }

  /**
   * One round of gap filling, from the alarm. While rounds make no progress the next one waits
   * twice as long (up to MAX_GAP_WAIT_MS); after MAX_GAP_ROUNDS of them the held frames go out.
   */
  protected async gapRound(): Promise<void> {
    const kv = this.ctx.storage.kv;
    kv.delete(GAP_PENDING);
    let progressed = false;
    if (this.sequencer.conversationsWithGaps().length > 0) {
      try {
        progressed = await this.fillGaps();
      } catch (err) {
        console.error(`gap fill failed: ${err instanceof Error ? err.name : "error"}`);
      }
    }
    if (this.sequencer.conversationsWithGaps().length === 0) return this.forgetGaps();
    const round = progressed ? 0 : (kv.get<number>(GAP_ROUND) ?? 0) + 1;
    if (round >= MAX_GAP_ROUNDS) {
      for (const id of this.sequencer.conversationsWithGaps()) this.deliverFrames(this.sequencer.releaseHeld(id));
      return this.forgetGaps();
    }
    kv.put(GAP_ROUND, round);
    kv.put(GAP_PENDING, true);
    await this.armAlarm(Date.now() + Math.min(GAP_WAIT_MS * 2 ** round, MAX_GAP_WAIT_MS));
  }

  protected forgetGaps(): void {
    this.ctx.storage.kv.delete(GAP_PENDING);
    this.ctx.storage.kv.delete(GAP_ROUND);
  }
}
