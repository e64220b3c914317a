import { DurableObject } from "cloudflare:workers";
import { CLOSE, CLOSE_REASON, PING, PONG, type ServerFrame } from "../../contract";
import { config } from "../config";
import type { SocketAttachment } from "./frames";
import { Sequencer } from "./sequencer";
import { IDENTITY_HEADER, identityOf, reciprocateClose, refuseSocket, safeClose, socketTags } from "./sockets";

/** How long a frame waits behind a gap before the missing messages are read from D1. */
export const GAP_WAIT_MS = 250;

const NOT_A_COMMAND: ServerFrame = {
  type: "error",
  error: { code: "bad_request", message: 'the only message a client may send is "ping"' },
};

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
    if (this.ctx.getWebSockets().length >= config(this.env).maxSocketsPerObject) {
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

  /** Runs before the 101 goes back, so the client sees its socket open only once this is done. */
  protected async onAccepted(_request: Request): Promise<void> {}

  override async webSocketMessage(ws: WebSocket): Promise<void> {
    const identity = identityOf(ws);
    if (identity.exp <= Date.now() / 1000) return safeClose(ws, CLOSE.policy, CLOSE_REASON.tokenExpired);
    if (config(this.env).rateLimits) {
      const { success } = await this.env.FRAME_RATE_LIMITER.limit({ key: `frames:${identity.socketId}` });
      if (!success) return safeClose(ws, CLOSE.policy, CLOSE_REASON.tooManyFrames);
    }
    ws.send(JSON.stringify(NOT_A_COMMAND));
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    reciprocateClose(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    safeClose(ws, CLOSE.serverError, CLOSE_REASON.socketError);
  }

  /** Runs `alarm()` in a moment if a frame is held behind a gap (or still is, after a fill). */
  protected async scheduleGapFill(held = this.sequencer.conversationsWithGaps().length > 0): Promise<void> {
    if (held && (await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + GAP_WAIT_MS);
    }
  }
}
