import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { CLOSE, CLOSE_REASON } from "../../contract";
import { lastSeqForParticipant } from "../db/participation";
import { liveSession, redeemTicket, storeTicket } from "../db/sessions";
import type { AppEnv } from "../env";
import { randomSecret, sha256 } from "../lib/crypto";
import { AppError } from "../lib/errors";
import { type Identity, verifyToken } from "../lib/jwt";
import { bearer, createRouter, errors, json } from "../lib/openapi";
import { requireSession } from "../middleware/auth";
import type { SocketAttachment } from "../realtime/frames";
import { IDENTITY_HEADER, LAST_SEQ_HEADER, refuseSocket } from "../realtime/sockets";
import { ticketSchema } from "../schemas/auth";
import { idString } from "../schemas/common";

export const TICKET_TTL_SECONDS = 30;

function originAllowed(allowed: string[], origin: string | undefined): boolean {
  return origin === undefined || allowed.length === 0 || allowed.includes(origin);
}

/** The request's URL without its credentials: nothing past admission ever sees a token or a ticket. */
function withoutCredentials(url: string): string {
  const clean = new URL(url);
  clean.searchParams.delete("token");
  clean.searchParams.delete("ticket");
  return clean.toString();
}

const ticket = createRoute({
  operationId: "createSocketTicket",
  method: "post",
  path: "/tickets",
  tags: ["realtime"],
  summary: "A single-use, 30-second ticket for `/ws?ticket=…`, bound to this session",
  security: bearer,
  middleware: [requireSession],
  responses: { 201: json(ticketSchema, "The ticket"), ...errors(401) },
});

type Admitted = Identity & { deviceStatus: "active" | "pending" };

/** The identity behind `ticket=` (spent here, whatever happens next) or `token=` (and its live session). */
async function admit(c: Context<AppEnv>): Promise<Admitted | null> {
  const ticketText = c.req.query("ticket");
  if (ticketText !== undefined) {
    const found = await redeemTicket(c.var.directory, await sha256(ticketText));
    if (!found || found.deviceStatus === "revoked") return null;
    return { ...found, exp: found.tokenExp, deviceStatus: found.deviceStatus };
  }
  const claims = await verifyToken(c.var.config.jwt, c.req.query("token") ?? "");
  if (!claims) return null;
  const session = await liveSession(c.var.directory, claims);
  if (!session || session.deviceStatus === "revoked") return null;
  return { ...claims, deviceStatus: session.deviceStatus };
}

/**
 * Admission happens here, before any object is touched: Origin, Upgrade, credential, live session,
 * participation. Refusals after the upgrade complete the handshake and close with 1008 (browsers
 * cannot read a refused handshake's status). The raw upgrade is then forwarded, without its
 * credential, with the verified identity in a header the Worker sets itself; objects are
 * unreachable except through this Worker.
 */
export const wsRoutes = createRouter()
  .openapi(ticket, async (c) => {
    const me = c.var.user;
    const text = randomSecret();
    await storeTicket(c.var.directory, {
      hash: await sha256(text),
      sessionId: me.sessionId,
      tokenExp: me.exp,
      ttlSeconds: TICKET_TTL_SECONDS,
    });
    return c.json({ ticket: text, expiresIn: TICKET_TTL_SECONDS }, 201);
  })
  .get("/", async (c) => {
    if (!originAllowed(c.var.config.allowedOrigins, c.req.header("Origin")))
      throw new AppError("forbidden", "origin not allowed");
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      throw new AppError("bad_request", "this endpoint needs a WebSocket upgrade", {
        status: 426,
        headers: { Upgrade: "websocket" },
      });
    }
    const admitted = await admit(c);
    if (!admitted) return refuseSocket(CLOSE.policy, CLOSE_REASON.invalidToken);
    const { userId, deviceId, sessionId, exp } = admitted;
    const identity: SocketAttachment = { userId, deviceId, sessionId, exp };
    const headers = new Headers(c.req.raw.headers);
    headers.set(IDENTITY_HEADER, JSON.stringify(identity));
    const forward = (extra?: [string, string]) => {
      if (extra) headers.set(...extra);
      return new Request(withoutCredentials(c.req.url), { method: "GET", headers });
    };

    const rawConversationId = c.req.queries("conversationId");
    if (rawConversationId === undefined) {
      return c.env.USER_INBOX.getByName(String(userId)).fetch(forward());
    }
    if (admitted.deviceStatus !== "active") return refuseSocket(CLOSE.policy, CLOSE_REASON.deviceNotLinked);
    const conversationId = rawConversationId.length === 1 ? idString.safeParse(rawConversationId[0]) : undefined;
    const shard = conversationId?.success ? c.var.dbs.shardOf(conversationId.data) : undefined;
    const participant =
      shard && conversationId?.success ? await lastSeqForParticipant(shard.db, conversationId.data, userId) : undefined;
    if (!conversationId?.success || participant === undefined) {
      return refuseSocket(CLOSE.policy, CLOSE_REASON.notParticipant);
    }
    // The status at admission rides in the socket's attachment (the room clears it on `accept`):
    // how the room refuses an invited participant's `typing` without a D1 query.
    if (participant.status === "invited") headers.set(IDENTITY_HEADER, JSON.stringify({ ...identity, invited: true }));
    const room = c.env.CONVERSATION_ROOM.getByName(String(conversationId.data));
    return room.fetch(forward([LAST_SEQ_HEADER, String(participant.lastSeq)]));
  });
