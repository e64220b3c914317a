// Seeding through the public API (contract v2): users (an account key and one signed device each,
// then a login on that device), conversations with epoch 1 wrapped for every device (random bytes:
// the server checks sizes and coverage only), message bodies under epoch 1 with a signature.
import { randomBytes } from "node:crypto";
import { SHARD_ID_STRIDE } from "../../src/db/shard-ids.ts";
import { newIdentity, randomKeys } from "../../tools/wire/index.ts";
import { must, pool } from "./http.ts";

export interface User {
  username: string;
  userId: number;
  deviceId: number;
  /** Set by `loginUsers`. */
  token: string;
}

export const PASSWORD = "bench-password-1";
export const CIPHERTEXT_BYTES = 256;

const b64 = (n: number): string => randomBytes(n).toString("base64");
const NONCE = b64(12);
const CIPHERTEXT = b64(CIPHERTEXT_BYTES);
const AUTH_TAG = b64(16);
const SIGNATURE = b64(64);

/** The JSON body of `POST /messages` under epoch 1, built as a string (cheap enough to make one per request). */
export function messageBody(conversationId: number, clientMessageId: string): string {
  return `{"conversationId":${conversationId},"keyEpoch":1,"nonce":"${NONCE}","ciphertext":"${CIPHERTEXT}","authTag":"${AUTH_TAG}","signature":"${SIGNATURE}","clientMessageId":"${clientMessageId}"}`;
}

/** Registers `n` users (bench_user_0 … under `prefix`); PBKDF2 makes each take ~40 ms of server CPU. */
export async function registerUsers(base: string, n: number, prefix = "bench_user_"): Promise<User[]> {
  return pool(n, 4, async (i) => {
    const username = `${prefix}${i}`;
    const { accountKey, device } = newIdentity("bench");
    const { userId, deviceId } = await must(201, base, "POST", "/auth/register", {
      body: { username, password: PASSWORD, accountKey, device },
    });
    return { username, userId, deviceId, token: "" };
  });
}

/**
 * Logs each user in on its device (fills in `token`): one PBKDF2 derivation each. v1's shortcut of
 * signing tokens locally is gone: a v2 access token names a session that must be live in D1.
 */
export async function loginUsers(base: string, users: User[]): Promise<User[]> {
  await pool(users.length, 4, async (i) => {
    const { accessToken } = await must(200, base, "POST", "/auth/login", {
      body: { username: users[i].username, password: PASSWORD, deviceId: users[i].deviceId },
    });
    users[i].token = accessToken;
  });
  return users;
}

/**
 * A conversation created by `members[0]` with every member, epoch 1 wrapped for each one's device;
 * the others accept it (they join as message requests), so everyone may post. Returns its id.
 */
export async function createConversation(base: string, members: User[], title: string): Promise<number> {
  const { conversationId } = await must(201, base, "POST", "/conversations", {
    token: members[0].token,
    body: { title, participants: members.map((m) => m.username), keys: randomKeys(members.map((m) => m.deviceId)) },
  });
  await pool(members.length - 1, 4, async (i) => {
    await must(200, base, "POST", `/conversations/${conversationId}/accept`, { token: members[i + 1]!.token });
  });
  return conversationId;
}

/**
 * SQL that appends `count` messages to a conversation in one statement (a recursive CTE, so no
 * per-row round trips), under epoch 1 as its sender's device, then sets the conversation's last_seq / last_message_id / last_activity_at
 * as the API would have. Same columns as migrations/0000_init.sql.
 */
export function historySql({
  conversationId,
  sender,
  count,
}: {
  conversationId: number;
  sender: User;
  count: number;
}): string {
  if (!/^[a-zA-Z0-9_.-]+$/.test(sender.username)) throw new Error(`unexpected username ${sender.username}`);
  // Global ids, as the server hands them out (src/db/shards.ts): this shard's largest plus the stride.
  const shard = conversationId % SHARD_ID_STRIDE;
  return `INSERT INTO messages (id, conversation_id, seq, sender_id, sender_username, sender_device_id, key_epoch, nonce, ciphertext, auth_tag, associated_data, signature, client_message_id, deleted, created_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${count})
SELECT (SELECT coalesce(max(id), ${shard}) FROM messages) + ${SHARD_ID_STRIDE} * i, ${conversationId}, i, ${sender.userId}, '${sender.username}', ${sender.deviceId}, 1, randomblob(12), randomblob(${CIPHERTEXT_BYTES}), randomblob(16), NULL, randomblob(64), 'seed-' || i, 0,
       strftime('%Y-%m-%dT%H:%M:%fZ', '2026-01-01T00:00:00.000Z', '+' || i || ' seconds')
FROM n;
UPDATE conversations SET
  last_seq = (SELECT max(seq) FROM messages WHERE conversation_id = ${conversationId}),
  last_message_id = (SELECT max(id) FROM messages WHERE conversation_id = ${conversationId}),
  last_activity_at = (SELECT max(created_at) FROM messages WHERE conversation_id = ${conversationId})
WHERE id = ${conversationId};
`;
}
