// Command-line options and the parameters of a run (`--quick` or full).
import { resolve } from "node:path";

export interface Options {
  quick: boolean;
  keep: boolean;
  only: string[] | undefined;
  wantWranglerDev: boolean;
  profiling: boolean;
  /** Record workerd with Linux perf and V8's jitdump; CPU per message by module. */
  perf: boolean;
  /** Add the capacity simulation (`shards`) to the run; `--only=shards` runs it alone. */
  sim: boolean;
  /** The simulated D1 service time per statement (D1_SERVICE_TIME_MS) for `shards`. */
  serviceMs: number;
  bundleOverride: string | undefined;
  onDisk: boolean;
  /** Write the results to bench/results/latest.json (the committed figures) rather than an untracked file. */
  save: boolean;
}

export function parseOptions(argv: string[]): Options {
  const quick = argv.includes("--quick");
  const bundleArg = argv.find((a) => a.startsWith("--bundle="))?.slice(9);
  const serviceArg = argv.find((a) => a.startsWith("--service-ms="))?.slice(13);
  const serviceMs = serviceArg === undefined ? 1 : Number(serviceArg);
  if (!(serviceMs >= 0)) throw new Error(`--service-ms=${serviceArg}: a number of milliseconds ≥ 0`);
  const perf = argv.includes("--perf");
  const profiling = argv.includes("--profile");
  // Both would measure each other: the inspector's profiler costs the server about half again.
  if (perf && profiling) throw new Error("--perf and --profile cannot be combined");
  return {
    quick,
    keep: argv.includes("--keep"),
    only: argv
      .find((a) => a.startsWith("--only="))
      ?.slice(7)
      .split(","),
    wantWranglerDev: argv.includes("--wrangler-dev") || (!quick && !argv.includes("--no-wrangler-dev")),
    profiling,
    perf,
    sim: argv.includes("--sim"),
    serviceMs,
    bundleOverride: bundleArg && resolve(bundleArg),
    onDisk: argv.includes("--disk"),
    save: argv.includes("--save"),
  };
}

/** Whether scenario `name` runs with these options (the simulation only when asked for). */
export function runs(o: Options, name: string): boolean {
  if (name.startsWith("shards") && o.sim) return true;
  if (o.only) return o.only.some((prefix) => name.startsWith(prefix));
  if (name.startsWith("shards")) return false;
  return name !== "wrangler-dev" || o.wantWranglerDev;
}

export interface Parameters {
  users: number;
  httpConnections: number;
  httpS: number;
  historyMessages: number;
  historyRate: number;
  historyS: number;
  historyThroughputS: number;
  fanoutSockets: number;
  fanoutRate: number;
  fanoutS: number;
  browserS: number;
  capacityLadder: number[];
  capacityStepS: number;
  scaleSockets: number;
  scaleIdleS: number;
  scaleDeadlineS: number;
  /** Rounds of Parley and of the write floor, interleaved, and how long each lasts. */
  floorRounds: number;
  floorRoundS: number;
  /** Rounds of Parley's and the socket floor's sockets (as many as `scale` holds), each on a fresh server. */
  floorSocketRounds: number;
  /** Broadcasts timed in each of those rounds, on each side. */
  floorBroadcasts: number;
}

/** Durations are fixed; every scenario stops by itself. */
export function parameters(quick: boolean): Parameters {
  return quick
    ? {
        users: 100,
        httpConnections: 32,
        httpS: 4,
        historyMessages: 10_000,
        historyRate: 40,
        historyS: 3,
        historyThroughputS: 2,
        fanoutSockets: 100,
        fanoutRate: 20,
        fanoutS: 6,
        browserS: 5,
        capacityLadder: [500, 1000, 2500, 5000, 10_000, 20_000],
        capacityStepS: 2.5,
        scaleSockets: 2000,
        scaleIdleS: 2,
        scaleDeadlineS: 40,
        floorRounds: 3,
        floorRoundS: 3,
        floorSocketRounds: 1,
        floorBroadcasts: 5,
      }
    : {
        users: 100,
        httpConnections: 32,
        httpS: 10,
        historyMessages: 100_000,
        historyRate: 50,
        historyS: 10,
        historyThroughputS: 5,
        fanoutSockets: 100,
        fanoutRate: 20,
        fanoutS: 20,
        browserS: 15,
        capacityLadder: [500, 1000, 2000, 3000, 5000, 7500, 10_000, 15_000, 20_000, 30_000, 40_000],
        capacityStepS: 5,
        scaleSockets: 10_000,
        scaleIdleS: 10,
        scaleDeadlineS: 150,
        floorRounds: 5,
        floorRoundS: 5,
        floorSocketRounds: 2,
        floorBroadcasts: 5,
      };
}
