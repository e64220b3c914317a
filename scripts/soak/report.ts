// What the soak reports: test-results/soak.json and the printed summary.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Verdict } from "./checks.ts";
import type { RunContext } from "./context.ts";
import type { LiveDelivery, Population } from "./load.ts";
import { RESULTS_DIR, type SqlRows } from "./server.ts";

export const RATE_LIMIT_NOTE =
  "rate limits OFF (--var RATE_LIMITS:off): every client registers and logs in from 127.0.0.1, over the 20/min per-IP budget";

export interface Outcome {
  population: Population;
  live: LiveDelivery;
  verdict: Verdict;
  sql: SqlRows | null;
  unacknowledged: number;
  failures: string[];
}

export function writeReport(ctx: RunContext, o: Outcome): void {
  const { options, stats, anomalies } = ctx;
  const { verdict, live } = o;
  const result = {
    passed: o.failures.length === 0,
    failures: o.failures,
    config: {
      seconds: options.seconds,
      clients: options.clients,
      conversations: options.conversations,
      restarts: options.restarts,
      tokenTtlSeconds: options.tokenTtl,
      intervalMs: options.intervalMs,
      seed: options.seed,
      rateLimits: "off",
    },
    durationSeconds: Number(ctx.elapsed()),
    counts: {
      sent: stats.sent,
      acknowledged: stats.acknowledged,
      unacknowledged: o.unacknowledged,
      retried: stats.retried,
      receivedViaSocket: stats.receivedViaSocket,
      caughtUpViaRest: stats.caughtUpViaRest,
      caughtUpInFinal: stats.caughtUpInFinal,
      lost: verdict.lost,
      duplicates: verdict.duplicates,
      gaps: verdict.gaps,
      serverRestarts: stats.serverRestarts,
      missingBeforeFinalCatchUp: live.missingBeforeFinal,
      liveOutstandingWhenSocketsUp: live.liveMissingAtQuiet,
      liveDeliverySeconds: Number((live.liveDeliveryMs / 1000).toFixed(1)),
    },
    details: { ...stats, anomalies: anomalies.length },
    conversations: verdict.perConversation,
    removal: ctx.removal,
    liveWait: live.liveWait,
    liveMisses: live.liveMisses,
    sql: o.sql && { duplicateRows: o.sql.dupes.length, perConversation: o.sql.perConversation },
    anomalies: anomalies.slice(0, 200),
  };
  writeFileSync(join(RESULTS_DIR, "soak.json"), `${JSON.stringify(result, null, 2)}\n`);
}

/** The printed summary; returns the exit code. */
export function printReport(ctx: RunContext, o: Outcome): number {
  const { options, stats, anomalies } = ctx;
  const { verdict, live, sql } = o;
  const row = (label: string, value: number, note = "") =>
    console.log(`  ${label.padEnd(28)} ${String(value).padStart(8)}${note ? `  ${note}` : ""}`);
  console.log(
    `\nsoak: ${options.seconds} s, ${options.clients} clients (${o.population.clients.filter((c) => c.mode === "inbox").length} on inbox sockets), ` +
      `${options.conversations} conversations, seed ${options.seed}; ${RATE_LIMIT_NOTE}`,
  );
  row("sent", stats.sent, "distinct clientMessageIds");
  row(
    "acknowledged",
    stats.acknowledged,
    `(${stats.answers201} answers 201, ${stats.answers200} answers 200, of which ${stats.lostAnswersRecovered} recovered a lost answer)`,
  );
  row(
    "retried",
    stats.retried,
    `(${stats.retriedAfterError} after an error, ${stats.retriedConcurrently} concurrent, ${stats.retriedAfterAck} after the answer; ` +
      `${stats.networkErrors} network errors, ${stats.answersDiscarded} answers discarded, ${stats.status5xx} 5xx, ${stats.status401} 401)`,
  );
  row(
    "received via socket",
    stats.receivedViaSocket,
    `(dropped as already held: ${stats.overlap.socket} socket frames, ${stats.overlap.rest} REST rows; both paths overlap on purpose)`,
  );
  row(
    "caught up via REST",
    stats.caughtUpViaRest,
    `(+${stats.caughtUpInFinal} only in the final catch-up; ${stats.gapCatchUps} gap-triggered catch-ups)`,
  );
  row(
    "sockets opened",
    stats.socketsOpened,
    `(${stats.socketDropsByClient} dropped by clients, ${stats.socketConnectFailures} failed connects, ` +
      `${stats.serverClosesLingering} server closes whose connection lingered)`,
  );
  row(
    "tokens refreshed",
    stats.refreshes,
    `(${stats.refreshRefused} refresh tokens refused, then ${stats.relogins} logins on the same device)`,
  );
  const r = ctx.removal;
  row(
    "epochs committed",
    stats.rotations,
    `(${stats.status409} POSTs answered 409, ${stats.rotationRaces} commits lost a race; ` +
      (r
        ? `c${r.client} removed from conversation ${r.conversationId} at seq ${r.seqBefore}..${r.seqAfter}, epoch ${r.epochAtRemoval}; ${r.messagesAfter ?? 0} messages after it under epochs ${JSON.stringify(r.epochsAfter ?? [])})`
        : "no removal)"),
  );
  row(
    "server restarts (SIGKILL)",
    stats.serverRestarts,
    `(downtime ${stats.restartDowntimeMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(", ")})`,
  );
  row(
    "messages in the database",
    verdict.perConversation.reduce((n, c) => n + c.messages, 0),
    `(SQL: ${sql ? `${sql.dupes.length} duplicate clientMessageIds` : "not checked"})`,
  );
  row("lost", verdict.lost);
  row("duplicates", verdict.duplicates);
  row("gaps", verdict.gaps);
  row("unacknowledged", o.unacknowledged);
  console.log(
    `  live delivery: ${live.liveMissingAtQuiet} deliveries outstanding once every socket was back, ` +
      `${live.missingBeforeFinal} never arrived live${live.missingBeforeFinal ? " (WARNING, see liveMisses in soak.json)" : ""}`,
  );
  console.log(
    `  socket closes: ${Object.entries(stats.socketCloses)
      .map(([k, v]) => `${k}: ${v}`)
      .join(", ")}`,
  );
  console.log(`  written to test-results/soak.json (server output: test-results/soak-wrangler.log)`);
  if (o.failures.length) {
    console.log(`\nSOAK FAILED: ${o.failures.join("; ")}`);
    for (const a of anomalies.slice(0, 30)) console.log(`  ${JSON.stringify(a)}`);
    return 1;
  }
  console.log("\nSOAK PASSED: every acknowledged message held by every member exactly once, in seq order, no gap");
  return 0;
}

/** What soak.json says when the run could not finish. */
export function writeFailure(ctx: RunContext, err: unknown): void {
  try {
    writeFileSync(
      join(RESULTS_DIR, "soak.json"),
      `${JSON.stringify({ passed: false, failures: [String((err as Error)?.message ?? err)], details: ctx.stats, anomalies: ctx.anomalies }, null, 2)}\n`,
    );
  } catch {
    // Best effort.
  }
}
