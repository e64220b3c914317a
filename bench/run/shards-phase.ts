// `shards`, issue #15's capacity model (with --sim, or --only=shards): the write scenario's load,
// the same for each row, on a fresh server that places new conversations on 1, 2, then 4 shards
// (SHARD_PLACEMENT), with every D1 binding gated to one statement at a time for D1_SERVICE_TIME_MS
// each (src/db/gate.ts), as D1 runs one query at a time per database. One core cannot show
// databases working in parallel; the gate's waits can, since they cost no CPU.
import { readFileSync } from "node:fs";
import { pool } from "../lib/http.ts";
import { createConversation, loginUsers, type User } from "../lib/seed.ts";
import type { PlainWorkerd } from "../lib/servers.ts";
import { configuredShards, conversationsPerShard, type ExtraShards, provisionShards } from "../lib/shards.ts";
import { type HttpSummary, type WriteConversation, write } from "../scenarios/http.ts";
import { attempt, type RunContext } from "./context.ts";
import type { Seeded } from "./phases.ts";

export const SHARD_COUNTS = [1, 2, 4] as const;
/** Enough that every shard gets several whichever way the server spreads them. */
const CONVERSATIONS = 64;

export interface ShardsResult extends HttpSummary {
  shards: number;
  shardPlacement: string;
  serviceMs: number;
  /** Whether the server could do what the row asks: SHARD_n bindings exist, the bundle reads the gate's var. */
  sharded: boolean;
  gated: boolean;
  conversationsPerShard?: Record<string, number> | { error: string };
  speedupVsOneShard?: number | null;
}

/** `n` two-member conversations, pairs of users as the write scenario's, created on the server at `base`. */
async function writeConversations(base: string, users: User[], n: number, title: string) {
  return pool(n, 4, async (i): Promise<WriteConversation> => {
    const members = [users[(2 * i) % users.length]!, users[(2 * i + 1) % users.length]!];
    return { id: await createConversation(base, members, `${title} ${i}`), sender: members[0]!, members };
  });
}

export async function shardsScenarios(ctx: RunContext, server: PlainWorkerd, seeded: Seeded): Promise<void> {
  const counts = SHARD_COUNTS.filter((k) => ctx.runs(`shards${k}`));
  if (counts.length === 0) return;
  const { P, options } = ctx;
  const serviceMs = options.serviceMs;
  const sharded = configuredShards(server.options.wranglerConfig).length > 0;
  const gated = readFileSync(server.bundleFile, "utf8").includes("D1_SERVICE_TIME_MS");
  if (!sharded)
    ctx.notes.push(
      "shards: wrangler.toml binds no SHARD_n (issue #15's sharding is not in this build): SHARD_PLACEMENT is ignored and every row runs on one database",
    );
  if (!gated)
    ctx.notes.push(
      "shards: the bundle never reads D1_SERVICE_TIME_MS: D1 is not gated, so the rows measure the server as it is, not the model",
    );
  const { runDir, persistDir } = ctx;
  let extra: ExtraShards | undefined;
  if (sharded) {
    ctx.log(
      `shards: binding and migrating the shards up to SHARD_${Math.max(...counts) - 1} that wrangler.toml lacks…`,
    );
    extra = await provisionShards({ wanted: Math.max(...counts), runDir, persistDir, cpu: ctx.allCores });
  }
  // Fresh tokens: a full run can outlive the seeded ones (15 minutes).
  const users = seeded.users.map((u) => ({ ...u }));
  const created = new Map<number, number[]>();
  for (const k of counts) {
    const key = `shards${k}` as const;
    const placement = Array.from({ length: k }, (_, i) => i).join(",");
    const sim = server.with(key, {
      vars: { D1_SERVICE_TIME_MS: String(serviceMs), SHARD_PLACEMENT: placement },
      d1: extra?.d1 ?? [],
    });
    let conversations: WriteConversation[];
    try {
      await sim.start();
      ctx.log(
        `workerd serve with SHARD_PLACEMENT=${placement}, D1_SERVICE_TIME_MS=${serviceMs} (pid ${sim.pid}); ${CONVERSATIONS} conversations…`,
      );
      if (k === counts[0]) await loginUsers(sim.base, users);
      conversations = await writeConversations(sim.base, users, CONVERSATIONS, `shards ${k}`);
      created.set(
        k,
        conversations.map((c) => c.id),
      );
    } catch (e) {
      const err = e as Error;
      ctx.log(`${key} FAILED to set up: ${err.stack ?? err}`);
      ctx.scenarios[key] = { error: String(err.message ?? err).slice(0, 2000) };
      await sim.stop();
      continue;
    }
    try {
      await attempt(
        ctx,
        key,
        async (): Promise<ShardsResult> => ({
          shards: k,
          shardPlacement: placement,
          serviceMs,
          sharded,
          gated,
          ...(await write({
            server: sim,
            conversations,
            connections: P.httpConnections,
            durationS: P.httpS,
            tag: `s${k}`,
          })),
        }),
        sim,
      );
    } finally {
      await sim.stop();
    }
  }
  if (extra) await recordPlacement(ctx, extra, created, Math.max(...counts));
}

/** Where each row's conversations landed, from the shards themselves (servers stopped). */
async function recordPlacement(
  ctx: RunContext,
  extra: ExtraShards,
  created: Map<number, number[]>,
  shards: number,
): Promise<void> {
  ctx.log("shards: counting each row's conversations on every shard…");
  for (const [k, ids] of created) {
    const row = ctx.scenarios[`shards${k}`];
    if (!row || "error" in row) continue;
    try {
      row.conversationsPerShard = await conversationsPerShard({
        shards: Array.from({ length: shards }, (_, n) => n),
        ids,
        configFile: extra.configFile,
        runDir: ctx.runDir,
        persistDir: ctx.persistDir,
        cpu: ctx.allCores,
      });
    } catch (e) {
      row.conversationsPerShard = { error: String((e as Error).message).slice(0, 500) };
    }
  }
}
