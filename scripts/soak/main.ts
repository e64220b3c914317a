// `npm run soak -- [--seconds 60] [--clients 8] [--conversations 3] [--restarts N] [--seed S]`
//
// A soak test of Parley's delivery promise against a real `wrangler dev` that this script starts
// itself (a free port, a fresh --persist-to directory, the Worker bundled once so that edits to src/
// during the run change nothing). M clients in a few conversations post messages with
// `clientMessageId`s and retry them at random (sequentially, concurrently, after network errors and
// after answers they threw away on purpose); their sockets (conversation sockets for half of them,
// the inbox socket for the other half) drop and reconnect at random with the contract's recipe
// (socket first, then `after`); every client has an account key and one signed device, and sends
// under the conversation's current key epoch (a 409 makes it rotate or catch up on the epoch); access
// tokens are short-lived so clients renew them with their single-use refresh token (and log in again
// on the same device if a refresh whose answer was lost counts as reuse); one member of the largest
// conversation is removed mid-run, after which the next sender commits a new epoch without its device
// and the removed client expects nothing more there; and the whole dev server process group is killed
// with SIGKILL and restarted, at least once, on the same port and storage. Then everything quiesces, every client makes a final catch-up,
// and the script checks that each client holds every acknowledged message of its conversations
// exactly once, seq 1..last with no gap, and that the database holds each clientMessageId once
// (history API, and SQL on the local D1 once the server is stopped).
//
// Rate limits are OFF for the soak (`--var RATE_LIMITS:off`): every client registers and logs in from
// 127.0.0.1, and register+login share a 20-a-minute budget per IP.
//
// Prints the figures, writes them to test-results/soak.json (the server's output goes to
// test-results/soak-wrangler.log), exits 1 on any loss, duplicate, gap, or if no restart happened.
//
// The run is one RunContext (context.ts) handed to every part: options.ts, server.ts (wrangler dev
// through tools/harness), client.ts + sockets.ts + send.ts (the clients), load.ts (the phases),
// checks.ts, report.ts.
import { exitOnSignals, killAll, requireModernNode } from "../../tools/harness/index.ts";
import { failures, sqlChecks, verifyConversations } from "./checks.ts";
import { RunContext, SoakError } from "./context.ts";
import { awaitLiveDelivery, finalCatchUp, load, populate } from "./load.ts";
import { parseOptions } from "./options.ts";
import { printReport, RATE_LIMIT_NOTE, writeFailure, writeReport } from "./report.ts";
import { SoakServer } from "./server.ts";

async function main(ctx: RunContext): Promise<number> {
  const o = ctx.options;
  ctx.log(
    `${o.seconds} s, ${o.clients} clients, ${o.conversations} conversations, ${o.restarts} restart(s), token TTL ${o.tokenTtl} s, seed ${o.seed}`,
  );
  ctx.log(RATE_LIMIT_NOTE);
  await ctx.server.bundle();
  await ctx.server.start("first start");
  ctx.log(`wrangler dev ready on ${ctx.server.baseUrl} (storage ${ctx.server.persistDir})`);

  const population = await populate(ctx);
  const stopProgress = await load(ctx, population);
  const live = await awaitLiveDelivery(ctx, population, stopProgress);
  await finalCatchUp(ctx, population);

  const unacknowledged = [...ctx.sentMessages.values()].filter((r) => !r.ack).length;
  const verdict = await verifyConversations(ctx, population);
  // The database itself, once the server is stopped gracefully.
  await ctx.server.stop();
  const sql = await sqlChecks(ctx, verdict);
  const outcome = { population, live, verdict, sql, unacknowledged, failures: failures(ctx, verdict, unacknowledged) };
  writeReport(ctx, outcome);
  return printReport(ctx, outcome);
}

requireModernNode("soak");
const ctx = new RunContext(parseOptions(process.argv.slice(2)));
exitOnSignals((signal) => console.error(`soak: ${signal}, stopping the dev server`));
ctx.server = new SoakServer(ctx);

const watchdog = setTimeout(() => {
  console.error(`soak: hard deadline of ${ctx.hardDeadlineMs / 1000} s passed; giving up`);
  killAll();
  process.exit(1);
}, ctx.hardDeadlineMs + 60_000);
watchdog.unref();

let exitCode = 1;
try {
  exitCode = await main(ctx);
} catch (err) {
  console.error(`\nSOAK FAILED: ${err instanceof SoakError ? err.message : ((err as Error)?.stack ?? err)}`);
  writeFailure(ctx, err);
  exitCode = 1;
} finally {
  killAll();
}
process.exit(exitCode);
