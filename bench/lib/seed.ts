// Seeding through the public API: users (register + login), conversations, message bodies.
import { randomBytes } from "node:crypto";
import { must, pool, request } from "./http.ts";

export interface User {
  username: string;
  userId: number;
  /** Set by `loginUsers` or `mintTokens`. */
  token: string;
}

export const PASSWORD = "bench-password-1";
export const CIPHERTEXT_BYTES = 256;

const b64 = (n: number): string => randomBytes(n).toString("base64");
const NONCE = b64(12);
const CIPHERTEXT = b64(CIPHERTEXT_BYTES);
const AUTH_TAG = b64(16);

/** The JSON body of `POST /messages`, built as a string (cheap enough to make one per request). */
export function messageBody(conversationId: number, clientMessageId: string): string {
  return `{"conversationId":${conversationId},"nonce":"${NONCE}","ciphertext":"${CIPHERTEXT}","authTag":"${AUTH_TAG}","clientMessageId":"${clientMessageId}"}`;
}

/** Registers `n` users (bench_user_0 … under `prefix`); PBKDF2 makes each take ~40 ms of server CPU. */
export async function registerUsers(base: string, n: number, prefix = "bench_user_"): Promise<User[]> {
  return pool(n, 4, async (i) => {
    const username = `${prefix}${i}`;
    const { userId } = await must(201, base, "POST", "/auth/register", {
      body: { username, password: PASSWORD, publicKey: b64(32) },
    });
    return { username, userId, token: "" };
  });
}

/** Logs each user in (fills in `token`). */
export async function loginUsers(base: string, users: User[]): Promise<User[]> {
  await pool(users.length, 4, async (i) => {
    const { accessToken } = await must(200, base, "POST", "/auth/login", {
      body: { username: users[i].username, password: PASSWORD },
    });
    users[i].token = accessToken;
  });
  return users;
}

/** A conversation created by `members[0]` with every member; returns its id. */
export async function createConversation(base: string, members: User[], title: string): Promise<number> {
  const { conversationId } = await must(201, base, "POST", "/conversations", {
    token: members[0].token,
    body: { title, participants: members.map((m) => ({ username: m.username, encryptedKey: b64(48) })) },
  });
  return conversationId;
}

/**
 * SQL that appends `count` messages to a conversation in one statement (a recursive CTE, so no
 * per-row round trips), then sets the conversation's last_seq / last_message_id / last_activity_at
 * as the API would have. Same columns as migrations/0000_init.sql.
 */
export function historySql({
  conversationId,
  senderId,
  count,
}: {
  conversationId: number;
  senderId: number;
  count: number;
}): string {
  return `INSERT INTO messages (conversation_id, seq, sender_id, nonce, ciphertext, auth_tag, associated_data, client_message_id, created_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${count})
SELECT ${conversationId}, i, ${senderId}, randomblob(12), randomblob(${CIPHERTEXT_BYTES}), randomblob(16), NULL, 'seed-' || i,
       strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01T00:00:00.000Z', '+' || i || ' seconds')
FROM n;
UPDATE conversations SET
  last_seq = (SELECT max(seq) FROM messages WHERE conversation_id = ${conversationId}),
  last_message_id = (SELECT max(id) FROM messages WHERE conversation_id = ${conversationId}),
  last_activity_at = (SELECT max(created_at) FROM messages WHERE conversation_id = ${conversationId})
WHERE id = ${conversationId};
`;
}

/**
 * Tokens for registered users without a login each (a login is one PBKDF2 derivation, ~40 ms of
 * the server's only core): signed exactly as the server's own login signs them (HS256 with the
 * run's JWT_SECRET, sub, username, iss, aud, iat, exp). Checked against `GET /users/me`; if the
 * server refuses it, the caller falls back to logging in through the API.
 */
export async function mintTokens(
  base: string,
  users: User[],
  {
    secret,
    issuer,
    audience,
    ttlSeconds = 3600,
  }: { secret: string; issuer: string; audience: string; ttlSeconds?: number },
): Promise<boolean> {
  const { SignJWT } = await import("jose");
  const key = new TextEncoder().encode(secret);
  const now = Math.floor(Date.now() / 1000);
  for (const u of users) {
    u.token = await new SignJWT({ username: u.username })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(String(u.userId))
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .sign(key);
  }
  const me = await request(base, "GET", "/users/me", { token: users[0].token });
  return me.status === 200 && me.json().userId === users[0].userId;
}
