import { CLOSE, CLOSE_REASON } from "../../contract";
import type { SocketAttachment } from "./frames";

const identities = new WeakMap<WebSocket, SocketAttachment>();

/** The socket's verified identity; read from its attachment once per wake-up, then cached. */
export function identityOf(ws: WebSocket): SocketAttachment {
  let identity = identities.get(ws);
  if (!identity) {
    identity = ws.deserializeAttachment() as SocketAttachment;
    identities.set(ws, identity);
  }
  return identity;
}

/** Changes a socket's attachment (it survives hibernation; no storage write). */
export function updateIdentity(ws: WebSocket, patch: Partial<SocketAttachment>): SocketAttachment {
  const identity = { ...identityOf(ws), ...patch };
  ws.serializeAttachment(identity);
  identities.set(ws, identity);
  return identity;
}

export const userTag = (userId: number) => `user:${userId}`;
export const deviceTag = (deviceId: number) => `device:${deviceId}`;
export const sessionTag = (sessionId: number) => `session:${sessionId}`;

/** The tags a socket is filed under, so that a revoked device's or an ended session's sockets are found at once. */
export const socketTags = (identity: { userId: number; deviceId: number; sessionId: number }) => [
  userTag(identity.userId),
  deviceTag(identity.deviceId),
  sessionTag(identity.sessionId),
];

/**
 * Sends one serialised frame to each socket, closing those whose token has expired instead: a
 * socket never outlives its token by more than one event.
 */
export function sendToAll(sockets: WebSocket[], text: string, nowSeconds = Date.now() / 1000): void {
  for (const ws of sockets) {
    if (identityOf(ws).exp <= nowSeconds) {
      safeClose(ws, CLOSE.policy, CLOSE_REASON.tokenExpired);
      continue;
    }
    try {
      ws.send(text);
    } catch {
      // The socket is closing; its close handler cleans up.
    }
  }
}

export function safeClose(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}

/** Answers the peer's close with the same code, as the protocol asks (1005/1006 cannot be sent). */
export function reciprocateClose(ws: WebSocket, code: number, reason: string): void {
  safeClose(ws, code === 1005 || code === 1006 ? CLOSE.normal : code, reason);
}

/** Completes a handshake only to close at once with `code`: how refusals reach browsers. */
export function refuseSocket(code: number, reason: string): Response {
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  server.close(code, reason);
  return new Response(null, { status: 101, webSocket: client });
}

/** Headers the Worker sets on the upgrade it forwards; clients cannot reach an object directly. */
export const IDENTITY_HEADER = "X-Parley-Identity";
export const LAST_SEQ_HEADER = "X-Parley-Last-Seq";
