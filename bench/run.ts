// Parley benchmark suite (issue 5). `npm run bench` (≈5 min) or `npm run bench -- --quick` (< 2 min).
// See bench/README.md for what each scenario measures and how.
//
// Options: --quick            shorter runs, 10k-message history, 2,000 sockets for scale
//          --only=a,b          run only these scenarios (ceiling, write, history, fanout, browser,
//                              capacity, scale, floor-write, floor-sockets, wrangler-dev, attachments,
//                              push; a prefix runs all it starts: `floor`); seeding always runs
//          --wrangler-dev / --no-wrangler-dev   force the wrangler dev HTTP rows on/off
//                              (default: on for the full run, off for --quick)
//          --keep              keep the temporary directory (logs, persisted state)
//          --bundle=FILE       serve this bundle instead of building one (to measure a patch)
//          --profile           CPU-profile workerd's isolates during each scenario (use with --only; the
//                              figures of a profiled run are not benchmark figures); writes
//                              bench/results/profiles/*.cpuprofile and prints the top functions
//          --perf              record workerd with Linux perf and V8's jitdump during each scenario (use
//                              with --only=write): CPU per message by module, checked against /proc
//          --sim               add the capacity simulation (shards: 1, 2 and 4 shards under a gated D1);
//                              --only=shards runs it alone; --service-ms=N the simulated D1 time per
//                              statement (default 1)
//          --disk              keep server state under $TMPDIR instead of /dev/shm (see README: fsync)
//          --save              write bench/results/latest.json (the committed figures); without it the
//                              results go to bench/results/last-run.json, which git ignores
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  developmentVapid,
  exitOnSignals,
  killAll,
  readWranglerConfig,
  requireModernNode,
} from "../tools/harness/index.ts";
import { agent } from "./lib/http.ts";
import { checkPerf, PERF_V8_FLAGS, PERIOD_NS } from "./lib/perf.ts";
import { PlainWorkerd } from "./lib/servers.ts";
import { printPerf, printProfiles, printTable } from "./report/print.ts";
import { collectResults, writeResults } from "./report/results.ts";
import { createContext, type RunContext } from "./run/context.ts";
import { filesScenarios } from "./run/files-phase.ts";
import { withFloorBinding } from "./run/floors-phase.ts";
import { machine, openFilesLimit, versions } from "./run/machine.ts";
import { parseOptions } from "./run/options.ts";
import { httpScenarios, prepare, seed, socketScenarios, wranglerDevScenario } from "./run/phases.ts";
import { shardsScenarios } from "./run/shards-phase.ts";

async function main(ctx: RunContext): Promise<void> {
  const { P, options } = ctx;
  const mach = machine();
  const vers = versions();
  ctx.log(
    `Parley bench (${options.quick ? "quick" : "full"}) in ${ctx.runDir}; server core ${ctx.serverCpu ?? "any"}, load generator core ${ctx.generatorPinned ? 1 : "any"}`,
  );
  if (ctx.serverCpu === undefined)
    ctx.notes.push("taskset or a second core unavailable: server and load generator were not pinned");
  const fdLimit = openFilesLimit();
  const scaleCap = Math.max(100, fdLimit - 1000);
  if (P.scaleSockets > scaleCap) {
    ctx.notes.push(`scale: only ${scaleCap} sockets, the open-files limit being ${fdLimit} (raise it with ulimit -n)`);
    P.scaleSockets = scaleCap;
  }

  if (options.perf) {
    const perf = checkPerf(join(ctx.runDir, "perf"));
    ctx.log(`--perf: ${perf.version}, cpu-clock sampling; workerd's V8 gets ${PERF_V8_FLAGS.join(" ")}`);
    ctx.notes.push(`perf: ${perf.version}, cpu-clock sampled every ${PERIOD_NS / 1e6} ms of CPU`, ...perf.notes);
  }
  const wranglerConfig = readWranglerConfig();
  const bundleFile = await prepare(ctx);
  const server = new PlainWorkerd({
    runDir: ctx.runDir,
    bundleFile,
    persistDir: ctx.persistDir,
    wranglerConfig: withFloorBinding(ctx, wranglerConfig, bundleFile),
    vars: {
      ...wranglerConfig.vars,
      ...developmentVapid(),
      RATE_LIMITS: "off",
      JWT_SECRET: ctx.secret,
      // One benchmark device fills an object with sockets; the contract's 8 per device would refuse them.
      MAX_SOCKETS_PER_DEVICE: "100000",
    },
    cpu: ctx.serverCpu,
    inspect: options.profiling,
    v8Flags: options.perf ? PERF_V8_FLAGS : undefined,
  });
  const seeded = await seed(ctx, server);
  await httpScenarios(ctx, server, seeded);
  await socketScenarios(ctx, server, seeded);
  await shardsScenarios(ctx, server, seeded);
  await wranglerDevScenario(ctx, seeded);
  await filesScenarios(ctx, seeded);

  const results = collectResults(ctx, mach, vers);
  printTable(results);
  printProfiles(ctx.profiles);
  printPerf(ctx.perf);
  const file = writeResults(results, options.save);
  ctx.log(`wrote ${file} (${results.durationS} s in all)`);
}

requireModernNode("bench");
exitOnSignals();
const ctx = createContext(parseOptions(process.argv.slice(2)));
let exitCode = 0;
try {
  await main(ctx);
} catch (e) {
  ctx.log(`bench failed: ${(e as Error).stack ?? e}`);
  exitCode = 1;
} finally {
  killAll();
  agent.destroy();
  if (ctx.options.keep || exitCode !== 0) ctx.log(`kept ${ctx.runDir} (logs, persisted state)`);
  else rmSync(ctx.runDir, { recursive: true, force: true });
}
process.exit(exitCode);
