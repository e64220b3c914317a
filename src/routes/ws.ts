import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { CLOSE, CLOSE_REASON, type CloseReason } from "../../contract";
import { admissionInShard } from "../db/admission";
import { liveSession, redeemTicket, storeTicket } from "../db/sessions";
import { databases } from "../db/shards";
import type { AppEnv, Database } from "../env";
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

type DeviceStatus = "active" | "pending" | "revoked";

/** The conversation a socket asks for: `null` if the id is malformed or no shard can hold it. */
type Target = { id: number; shard: Database } | null;

type Admission =
  | { refused: CloseReason }
  /** `room`: a conversation socket's conversation, its `lastSeq` and whether the caller is only invited. */
  | { identity: Identity; room?: { id: number; lastSeq: number; invited: boolean } };

/**
 * Who the socket is, or why it is refused. The reads go to the primaries, not through the request's
 * D1 sessions: a bookmark could only make them older, and a 101 answers with none. A conversation
 * socket's token costs one read of the shard when the shard's mirror vouches for the session (as a
 * message's sender check does); only otherwise is the directory asked, as for every ticket.
 */
async function admit(c: Context<AppEnv>, target: Target | undefined): Promise<Admission> {
  const dbs = databases(c.env);
  let identity: Identity;
  let deviceStatus: DeviceStatus | undefined;
  const ticketText = c.req.query("ticket");
  if (ticketText !== undefined) {
    // Spent here, whatever happens next.
    const found = await redeemTicket(dbs.directory, await sha256(ticketText));
    if (!found || found.deviceStatus === "revoked") return { refused: CLOSE_REASON.invalidToken };
    identity = { userId: found.userId, deviceId: found.deviceId, sessionId: found.sessionId, exp: found.tokenExp };
    deviceStatus = found.deviceStatus;
  } else {
    const claims = await verifyToken(c.var.config.jwt, c.req.query("token") ?? "");
    if (!claims) return { refused: CLOSE_REASON.invalidToken };
    identity = claims;
  }
  const inShard = target ? await admissionInShard(target.shard, target.id, identity) : undefined;
  if (deviceStatus === undefined) {
    deviceStatus = inShard?.live ? "active" : (await liveSession(dbs.directory, identity))?.deviceStatus;
  }
  if (deviceStatus === undefined || deviceStatus === "revoked") return { refused: CLOSE_REASON.invalidToken };
  if (target === undefined) return { identity };
  if (deviceStatus !== "active") return { refused: CLOSE_REASON.deviceNotLinked };
  if (!target || !inShard?.status) return { refused: CLOSE_REASON.notParticipant };
  return { identity, room: { id: target.id, lastSeq: inShard.lastSeq, invited: inShard.status === "invited" } };
}

/** `conversationId=` as the socket's target: `undefined` for the inbox (no conversationId at all). */
function targetOf(c: Context<AppEnv>): Target | undefined {
  const raw = c.req.queries("conversationId");
  if (raw === undefined) return undefined;
  const id = raw.length === 1 ? idString.safeParse(raw[0]) : undefined;
  const shard = id?.success ? databases(c.env).shardOf(id.data) : undefined;
  return id?.success && shard ? { id: id.data, shard: shard.db } : null;
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
    await storeTicket(c.var.dbs.directory, {
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
    const admitted = await admit(c, targetOf(c));
    if ("refused" in admitted) return refuseSocket(CLOSE.policy, admitted.refused);
    const { userId, deviceId, sessionId, exp } = admitted.identity;
    const identity: SocketAttachment = { userId, deviceId, sessionId, exp };
    const headers = new Headers(c.req.raw.headers);
    const forward = (attachment: SocketAttachment) => {
      headers.set(IDENTITY_HEADER, JSON.stringify(attachment));
      return new Request(withoutCredentials(c.req.url), { method: "GET", headers });
    };
    const { room } = admitted;
    if (!room) return c.env.USER_INBOX.getByName(String(userId)).fetch(forward(identity));
    headers.set(LAST_SEQ_HEADER, String(room.lastSeq));
    // The status at admission rides in the socket's attachment (the room clears it on `accept`):
    // how the room refuses an invited participant's `typing` without a D1 query.
    return c.env.CONVERSATION_ROOM.getByName(String(room.id)).fetch(
      forward(room.invited ? { ...identity, invited: true } : identity),
    );
  });
