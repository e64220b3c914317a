import type { Context } from "hono";
import type { Shard } from "../db/shards";
import type { AppEnv } from "../env";
import { type AppError, notAParticipant } from "./errors";

/**
 * The shard holding the conversation (or message, or attachment) `id` names. An id no configured
 * shard can hold gets the answer of any conversation the caller is not in: ids say nothing more.
 */
export function shardFor(c: Context<AppEnv>, id: number, refuse: () => AppError = notAParticipant): Shard {
  const shard = c.var.dbs.shardOf(id);
  if (!shard) throw refuse();
  return shard;
}
