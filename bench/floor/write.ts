// The write floor: what `POST /messages` does on its success path, without Hono, zod or Drizzle.
// Same token check, the same D1 batch (bench/floor/statements.ts), the same publish call, the same
// answer; what it leaves out is the framework around them and the refusal path.
import type { MessageResponse } from "../../contract";
import { SHARD_ID_STRIDE } from "../../src/db/shard-ids";
import { decodeBase64 } from "../../src/lib/base64";
import { type Identity, verifyToken } from "../../src/lib/jwt";
import { pushToOfflineDevices } from "../../src/push/offline";
import { DELIVERY, INSERT_MESSAGE, RESULT, type SlotValues, type Statement } from "./statements";

/** Where a committed message goes: Parley's room (the write floor) or the socket floor's object. */
export type Publish = (message: MessageResponse, inboxRecipients: number[]) => Promise<void>;

type Body = Record<string, unknown>;

interface InsertedRow {
  id: number;
  seq: number;
  conversation_id: number;
  sender_id: number;
  sender_username: string | null;
  sender_device_id: number;
  key_epoch: number;
  client_message_id: string | null;
  created_at: string;
  expires_at: string | null;
}

/** The headers Parley's middleware puts on every answer. */
const HEADERS = {
  "Content-Type": "application/json; charset=utf-8",
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
};
const answer = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: HEADERS });
const problem = (status: number, message: string) => answer(status, { error: { message } });
const isId = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 1;
const bytes = (x: unknown) => (typeof x === "string" ? decodeBase64(x) : null);

/** The values the statements bind, or null for a body the floor does not cover. */
function slotValues(body: Body, sender: Identity, budget: number, now: Date): SlotValues | null {
  const { conversationId, keyEpoch, clientMessageId } = body;
  if (!isId(conversationId) || !isId(keyEpoch)) return null;
  if (clientMessageId !== undefined && typeof clientMessageId !== "string") return null;
  // The statements are those of a plain message: attachments and relations bind other SQL.
  if (body.attachments !== undefined || (body.relatesTo ?? null) !== null) return null;
  const [nonce, ciphertext, authTag, signature] = [body.nonce, body.ciphertext, body.authTag, body.signature].map(
    bytes,
  );
  const associatedData = body.associatedData == null ? null : bytes(body.associatedData);
  if (!nonce || !ciphertext || !authTag || !signature || (body.associatedData != null && !associatedData)) return null;
  const createdAt = now.toISOString();
  return {
    conversationId,
    shard: conversationId % SHARD_ID_STRIDE,
    userId: sender.userId,
    deviceId: sender.deviceId,
    sessionId: sender.sessionId,
    keyEpoch,
    nonce,
    ciphertext,
    authTag,
    associatedData,
    signature,
    clientMessageId: clientMessageId ?? null,
    createdAt,
    day: createdAt.slice(0, 10),
    bytes: ciphertext.byteLength,
    budget,
    nowMs: now.getTime(),
    participantIds: "[]",
  };
}

/** `POST /messages`'s success path. */
export async function floorSend(request: Request, env: Env, ctx: ExecutionContext, publish: Publish) {
  // Parley's own verifyToken (jose's jwtVerify, the HMAC key imported once per isolate): the token
  // and its claims must be checked either way, so the floor pays for it exactly as Parley does and
  // the difference between the two is the framework, not the JWT library.
  const token = /^Bearer (\S+)$/.exec(request.headers.get("Authorization") ?? "")?.[1];
  const jwt = { secret: env.JWT_SECRET, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE };
  const sender = token ? await verifyToken(jwt, token) : null;
  if (!sender) return problem(401, "invalid or expired token");
  const body = await request.json<Body>().catch(() => null);
  const values = body && slotValues(body, sender, Number(env.DAILY_BYTES_PER_USER), new Date());
  if (!body || !values) return problem(400, "the floor takes a plain, well-formed message only");

  // As Parley: the conversation's shard (its id modulo 4096) through a D1 session (no bookmark here).
  const shard = (env as unknown as Record<string, D1Database>)[`SHARD_${values.shard}`];
  if (!shard) return problem(403, "no such conversation");
  const session = shard.withSession("first-unconstrained");
  const bind = ({ sql, params }: Statement, on: D1DatabaseSession) =>
    on.prepare(sql).bind(...params.map((p) => (typeof p === "string" ? values[p] : p.literal)));
  const results = await session.batch(INSERT_MESSAGE.map((statement) => bind(statement, session)));
  const row = results[RESULT.inserted]?.results[0] as InsertedRow | undefined;
  if (!row) return problem(409, "not stored (the floor does not say why)");
  const participants = (results[RESULT.participants]?.results ?? []) as { user_id: number }[];
  values.participantIds = JSON.stringify(participants.map((r) => r.user_id));

  // The request's own base64 texts: strictly decoded above, so they are what encoding the stored bytes gives.
  const message: MessageResponse = {
    messageId: row.id,
    seq: row.seq,
    conversationId: row.conversation_id,
    senderId: row.sender_id,
    senderUsername: row.sender_username,
    senderDeviceId: row.sender_device_id,
    keyEpoch: row.key_epoch,
    timestamp: row.created_at,
    nonce: body.nonce as string,
    ciphertext: body.ciphertext as string,
    authTag: body.authTag as string,
    associatedData: (body.associatedData as string | null | undefined) ?? null,
    signature: body.signature as string,
    clientMessageId: row.client_message_id,
    attachments: [],
    relatesTo: null,
    expiresAt: row.expires_at,
    deleted: false,
  };
  // After the answer, as Parley's deliverMessage: the directory's one read, the room, the push hand-off.
  const delivered = (async () => {
    const directory = env.DIRECTORY.withSession("first-unconstrained");
    const { results: targets } = await bind(DELIVERY, directory).all<{
      user_id: number;
      device_id: number | null;
    }>();
    const onlineInboxes = targets.filter((t) => t.device_id === null).map((t) => t.user_id);
    const candidates = targets.flatMap((t) =>
      t.device_id === null ? [] : [{ deviceId: t.device_id, userId: t.user_id }],
    );
    await publish(message, onlineInboxes);
    await pushToOfflineDevices(env, {
      conversationId: row.conversation_id,
      messageId: row.id,
      candidates,
      onlineInboxes,
    });
  })();
  ctx.waitUntil(
    delivered.catch((err) => console.error(`floor delivery failed: ${err instanceof Error ? err.name : "error"}`)),
  );
  return answer(201, { messageId: row.id, seq: row.seq, timestamp: row.created_at });
}
