// The floors (bench/floor/): the bundle that carries them, their Durable Object binding, and the two
// scenarios that measure Parley against them on the same server.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type WranglerSubset, wrangler } from "../../tools/harness/index.ts";
import type { PlainWorkerd } from "../lib/servers.ts";
import { socketFloor, writeFloor } from "../scenarios/floors.ts";
import { attempt, type RunContext } from "./context.ts";
import type { Seeded } from "./phases.ts";

const FLOOR_ENTRY = "bench/floor/entry.ts";
const FLOOR_SOCKETS = { name: "FLOOR_SOCKETS", className: "FloorSockets" };

/**
 * `wrangler deploy --dry-run` of bench/floor/entry.ts: Parley's Worker bundled exactly as for a deploy,
 * with the floors beside it. `--config`: next to the entry sits the attachment floor's wrangler.toml,
 * which wrangler would otherwise take.
 */
export async function buildBenchBundle(outDir: string, options: Parameters<typeof wrangler>[1]): Promise<string> {
  await wrangler(["deploy", FLOOR_ENTRY, "--config", "wrangler.toml", "--dry-run", "--outdir", outDir], options);
  const file = join(outDir, "entry.js");
  if (!existsSync(file)) throw new Error(`wrangler deploy --dry-run wrote no ${file}`);
  return file;
}

/** The wrangler.toml subset plus the socket floor's object, when the bundle has it (not a bare `--bundle=`). */
export function withFloorBinding(ctx: RunContext, config: WranglerSubset, bundleFile: string): WranglerSubset {
  if (/export \{[^}]*\bFloorSockets\b/.test(readFileSync(bundleFile, "utf8"))) {
    return { ...config, durableObjects: [...config.durableObjects, FLOOR_SOCKETS] };
  }
  ctx.notes.push(`the bundle has no floors (build it from ${FLOOR_ENTRY}): floor-write and floor-sockets cannot run`);
  return config;
}

/** Parley's write path and the write floor, interleaved on the server the HTTP scenarios use. */
export async function floorWriteScenario(ctx: RunContext, server: PlainWorkerd, seeded: Seeded): Promise<void> {
  const { P } = ctx;
  await attempt(
    ctx,
    "floor-write",
    () =>
      writeFloor({
        server,
        conversations: seeded.writeConversations,
        connections: P.httpConnections,
        rounds: P.floorRounds,
        roundS: P.floorRoundS,
      }),
    server,
  );
}

/** Parley's sockets and the socket floor's, each round on a fresh server. */
export async function floorSocketsScenario(ctx: RunContext, server: PlainWorkerd, seeded: Seeded): Promise<void> {
  if (!ctx.runs("floor-sockets")) return;
  const { P } = ctx;
  const fresh = async (what: string) => {
    await server.stop();
    await server.start();
    ctx.log(`workerd serve restarted for floor-sockets, ${what} (pid ${server.pid})`);
  };
  await attempt(
    ctx,
    "floor-sockets",
    () =>
      socketFloor({
        server,
        fresh,
        conversation: seeded.scale,
        count: P.scaleSockets,
        idleS: P.scaleIdleS,
        deadlineMs: P.scaleDeadlineS * 1000,
        rounds: P.floorSocketRounds,
        broadcasts: P.floorBroadcasts,
      }),
    server,
  );
}
