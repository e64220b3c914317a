import type { Context } from "hono";
import { usersWhoBlocked } from "../db/blocks";
import type { ListPosition } from "../db/conversations";
import { conversationCountsAcross } from "../db/user-conversations";
import type { AppEnv } from "../env";
import { decodeBase64Loose, encodeBase64Url } from "../lib/base64url";
import { AppError } from "../lib/errors";

/** The most participants a conversation holds, the creator included. */
export const MAX_PARTICIPANTS = 256;

/**
 * Whether the caller may put `joining` into a conversation: nobody who blocked the caller (403,
 * `this user cannot be added`), and nobody, the caller included, past the per-user conversation
 * limit (409). `counted` are all the users the new membership adds a conversation to.
 */
export async function assertMayJoin(c: Context<AppEnv>, counted: number[], joining: number[]): Promise<void> {
  const me = c.var.user.userId;
  const [blockers, counts] = await Promise.all([
    usersWhoBlocked(c.var.dbs.directory, joining, me),
    conversationCountsAcross(c.var.dbs, counted),
  ]);
  if (blockers.length > 0) throw new AppError("forbidden", "this user cannot be added");
  const limit = c.var.config.maxConversationsPerUser;
  const full = counted.filter((userId) => (counts.get(userId) ?? 0) >= limit);
  if (full.length > 0) {
    throw new AppError("conflict", `at most ${limit} conversations per user`, {
      details: full.map((userId) => ({
        path: userId === me ? "participants" : "username",
        message: userId === me ? "you are in too many conversations" : "that user is in too many conversations",
      })),
    });
  }
}

/** The list cursor is opaque to clients: where the previous page ended, as base64url JSON. */
export function encodeCursor(position: ListPosition): string {
  return encodeBase64Url(new TextEncoder().encode(JSON.stringify([position.activityAt, position.id])));
}

export function decodeCursor(cursor: string): ListPosition {
  const invalid = new AppError("validation_failed", "request is not valid", {
    details: [{ path: "cursor", message: "must be a nextCursor this API gave" }],
  });
  try {
    const bytes = decodeBase64Loose(cursor);
    const [activityAt, id] = JSON.parse(new TextDecoder().decode(bytes ?? new Uint8Array())) as unknown[];
    if (typeof activityAt !== "string" || !Number.isSafeInteger(id) || (id as number) < 1) throw invalid;
    return { activityAt, id: id as number };
  } catch {
    throw invalid;
  }
}
