import { Hono } from "hono";
import { CLOSE, CLOSE_REASON } from "../../contract";
import { lastSeqForParticipant } from "../db/conversations";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { verifyToken } from "../lib/jwt";
import { IDENTITY_HEADER, LAST_SEQ_HEADER, refuseSocket } from "../realtime/sockets";
import { idString } from "../schemas/common";

function originAllowed(allowed: string[], origin: string | undefined): boolean {
  return origin === undefined || allowed.length === 0 || allowed.includes(origin);
}

/**
 * Admission happens here, before any object is touched: Origin, Upgrade, token, participation.
 * Refusals after the upgrade complete the handshake and close with 1008 (browsers cannot read a
 * refused handshake's status). The raw upgrade is then forwarded with the verified identity in a
 * header the Worker sets itself; objects are unreachable except through this Worker.
 */
export const wsRoutes = new Hono<AppEnv>().get("/", async (c) => {
  if (!originAllowed(c.var.config.allowedOrigins, c.req.header("Origin")))
    throw new AppError("forbidden", "origin not allowed");
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new AppError("bad_request", "this endpoint needs a WebSocket upgrade", {
      status: 426,
      headers: { Upgrade: "websocket" },
    });
  }
  const claims = await verifyToken(c.var.config.jwt, c.req.query("token") ?? "");
  if (!claims) return refuseSocket(CLOSE.policy, CLOSE_REASON.invalidToken);
  const identity = { userId: claims.userId, username: claims.username, exp: claims.exp };
  const headers = new Headers(c.req.raw.headers);
  headers.set(IDENTITY_HEADER, JSON.stringify(identity));

  const rawConversationId = c.req.queries("conversationId");
  if (rawConversationId === undefined) {
    const inbox = c.env.USER_INBOX.getByName(String(claims.userId));
    return inbox.fetch(new Request(c.req.raw, { headers }));
  }
  const conversationId = rawConversationId.length === 1 ? idString.safeParse(rawConversationId[0]) : undefined;
  const lastSeq = conversationId?.success
    ? await lastSeqForParticipant(c.var.db, conversationId.data, claims.userId)
    : undefined;
  if (!conversationId?.success || lastSeq === undefined) {
    return refuseSocket(CLOSE.policy, CLOSE_REASON.notParticipant);
  }
  headers.set(LAST_SEQ_HEADER, String(lastSeq));
  const room = c.env.CONVERSATION_ROOM.getByName(String(conversationId.data));
  return room.fetch(new Request(c.req.raw, { headers }));
});
