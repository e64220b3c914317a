// The socket floor: the least a Durable Object does to hold hibernatable sockets and broadcast to
// them. No admission checks, no tags, no sequencer, no inbox forwarding.
import { DurableObject } from "cloudflare:workers";
import { type MessageResponse, PING, PONG } from "../../contract";

export class FloorSockets extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  }

  override async fetch(): Promise<Response> {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ at: Date.now() });
    return new Response(null, { status: 101, webSocket: client });
  }

  /** The frame Parley's room sends for a message, to every socket. */
  async publish(message: MessageResponse): Promise<void> {
    const text = JSON.stringify({ type: "newMessage", data: message });
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
      } catch {
        // Closing: nothing to do.
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }
}
