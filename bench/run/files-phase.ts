// Issue #14's scenarios (`attachments`, `push`), under wrangler dev (see bench/scenarios/files.ts):
// Parley first (throughput, then the push path), then the floor Worker on the same persisted state,
// each pinned to the server core like the other rows.
import { developmentVapid } from "../../tools/harness/index.ts";
import { loginUsers } from "../lib/seed.ts";
import { WranglerDev } from "../lib/servers.ts";
import { floorUpload, parleyUpload, pushCost, throughput } from "../scenarios/files.ts";
import { attempt, type RunContext } from "./context.ts";
import type { Seeded } from "./phases.ts";

const SIZES = [1, 10];

export async function filesScenarios(ctx: RunContext, seeded: Seeded): Promise<void> {
  if (!ctx.runs("attachments") && !ctx.runs("push")) return;
  const repeats = (mib: number) => (mib === 1 ? (ctx.options.quick ? 5 : 10) : ctx.options.quick ? 2 : 4);
  const parley = new WranglerDev({
    runDir: ctx.runDir,
    persistDir: ctx.persistDir,
    secret: ctx.secret,
    cpu: ctx.serverCpu,
    env: { ...developmentVapid(), PUSH_ALLOW_INSECURE_ENDPOINTS: "on" },
    log: "wrangler-dev-files.log",
  });
  await parley.start();
  ctx.log(`wrangler dev (Parley) ready on ${parley.base} for attachments and push`);
  let parleyRows: Awaited<ReturnType<typeof throughput>> | undefined;
  try {
    const members = seeded.fan100.members.map((m) => ({ ...m }));
    await loginUsers(parley.base, members);
    if (ctx.runs("attachments")) {
      parleyRows = await throughput({
        server: parley,
        sizesMiB: SIZES,
        repeats,
        upload: parleyUpload(parley, seeded.fan100.id, members[0]!),
        downloadHeaders: { authorization: `Bearer ${members[0]!.token}` },
      });
    }
    if (parley.pid) {
      const pid = parley.pid;
      await attempt(
        ctx,
        "push",
        () =>
          pushCost({
            server: { ...parley, kind: parley.kind, base: parley.base, wsBase: parley.wsBase, pid },
            conversationId: seeded.fan100.id,
            members,
            messages: ctx.options.quick ? 2 : 3,
          }),
        parley,
      );
    }
  } finally {
    await parley.stop();
  }
  if (!ctx.runs("attachments") || !parleyRows) return;
  const floor = new WranglerDev({
    runDir: ctx.runDir,
    persistDir: ctx.persistDir,
    secret: ctx.secret,
    cpu: ctx.serverCpu,
    config: "bench/floor/wrangler.toml",
    log: "wrangler-dev-floor.log",
  });
  await floor.start();
  ctx.log(`wrangler dev (floor Worker) ready on ${floor.base}`);
  try {
    const rows = parleyRows;
    await attempt(
      ctx,
      "attachments",
      async () => {
        const floorRows = await throughput({ server: floor, sizesMiB: SIZES, repeats, upload: floorUpload(floor) });
        return { server: "wrangler dev", parley: rows, floor: floorRows };
      },
      floor,
    );
  } finally {
    await floor.stop();
  }
}
