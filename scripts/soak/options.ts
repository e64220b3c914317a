// The soak's command line: `npm run soak -- [--seconds 60] [--clients 8] [--conversations 3] …`.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

export interface Options {
  seconds: number;
  clients: number;
  conversations: number;
  /** Seconds into the load phase at which to kill the server, if given. */
  restartAt: number[] | undefined;
  restarts: number;
  tokenTtl: number;
  intervalMs: number;
  seed: number;
  bundleDir: string | undefined;
  verbose: boolean;
  keep: boolean;
}

export const START_TIMEOUT_MS = 120_000;
export const REQUEST_TIMEOUT_MS = 15_000;
export const PAGE = 100;
/** Once the load is over and every socket is up, how long live delivery may take to bring everything. */
export const LIVE_WAIT_MS = 15_000;

/** The whole run, setup and checks included, must end by then (a hang is a failure, not a CI timeout). */
export const hardDeadlineMs = (o: Options): number => (o.seconds + 300 + o.restarts * 120) * 1000;

const HELP = `npm run soak -- [options]
  --seconds N        load phase length (default 60)
  --clients M        clients, each its own user with one device (default 8; 3 or more for the mid-run removal)
  --conversations K  conversations (default 3; each client is in 1 or 2)
  --restarts R       SIGKILL + restarts of the dev server (default max(1, seconds/30))
  --restart-at T,…   kill at these seconds into the load phase instead (sets --restarts)
  --token-ttl S      TOKEN_TTL_SECONDS for the run, so tokens expire and clients refresh them (default 15)
  --interval-ms T    mean pause between a client's messages (default 250)
  --seed S           seed of the random choices (printed at the start)
  --bundle-dir DIR   serve DIR/index.js (a \`wrangler deploy --dry-run --outdir DIR\` bundle) instead of bundling src/
  --keep             keep the --persist-to directory (local D1 and Durable Object storage) for inspection
  --verbose          print every anomaly`;

/** Parses the arguments; prints the help or an error and exits when it must. */
export function parseOptions(argv: string[]): Options {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      seconds: { type: "string", default: "60" },
      clients: { type: "string", default: "8" },
      conversations: { type: "string", default: "3" },
      restarts: { type: "string" },
      seed: { type: "string" },
      "token-ttl": { type: "string", default: "15" },
      "interval-ms": { type: "string", default: "250" },
      "bundle-dir": { type: "string" },
      "restart-at": { type: "string" },
      verbose: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (args.help) {
    console.log(HELP);
    process.exit(0);
  }
  const int = (
    name: "seconds" | "clients" | "conversations" | "restarts" | "token-ttl" | "interval-ms",
    min: number,
  ) => {
    const n = Number(args[name]);
    if (!Number.isInteger(n) || n < min) {
      console.error(`--${name} must be an integer >= ${min}`);
      process.exit(2);
    }
    return n;
  };
  const seconds = int("seconds", 5);
  const clients = int("clients", 2);
  const conversations = Math.min(int("conversations", 1), clients);
  const restartAt = args["restart-at"]
    ?.split(",")
    .map(Number)
    .sort((a, b) => a - b);
  if (restartAt && !restartAt.every((t) => Number.isFinite(t) && t >= 0)) {
    console.error("--restart-at takes seconds into the load phase, comma-separated");
    process.exit(2);
  }
  const restarts =
    restartAt?.length ?? (args.restarts === undefined ? Math.max(1, Math.floor(seconds / 30)) : int("restarts", 1));
  return {
    seconds,
    clients,
    conversations,
    restartAt,
    restarts,
    tokenTtl: int("token-ttl", 5),
    intervalMs: int("interval-ms", 10),
    seed: args.seed === undefined ? randomBytes(4).readUInt32LE(0) : Number(args.seed) >>> 0,
    bundleDir: args["bundle-dir"],
    verbose: args.verbose,
    keep: args.keep,
  };
}
