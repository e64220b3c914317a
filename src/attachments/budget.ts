import { chargeDailyBytes } from "../db/daily-bytes";
import type { Database } from "../env";
import { AppError } from "../lib/errors";

/**
 * Charges `bytes` to the user's daily budget (ciphertext and attachments together), or throws the
 * contract's 429 with `Retry-After` up to the next UTC midnight, when the budget starts again.
 */
export async function chargeOrRefuse(db: Database, userId: number, bytes: number, budget: number): Promise<void> {
  const charge = await chargeDailyBytes(db, userId, bytes, budget);
  if (!charge.ok) {
    throw new AppError("rate_limited", "daily byte budget used up; retry after midnight UTC", {
      headers: { "Retry-After": String(charge.retryAfterSeconds) },
    });
  }
}
