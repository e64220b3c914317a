// The table a run prints (and stores in its JSON): one row per figure, with its target.
import { round } from "../lib/http.ts";
import type { LatencySummary } from "../lib/stats.ts";
import { socketFloorRows, writeFloorRows } from "./floors.ts";
import type { Failed, Row, ScenarioContext, Scenarios } from "./types.ts";

export const TARGETS = {
  writeRatio: 0.4,
  costMsPerMessage: 2,
  fanoutP50Ms: 15,
  fanoutP99Ms: 50,
  capacityDeliveriesPerSecond: 5000,
  capacityP99Ms: 100,
  scaleSockets: 10_000,
  scaleRssMiB: 1024,
  scaleBroadcastMs: 2000,
  historyRatio: 1.5,
  /** Parley ÷ the floors of bench/floor/ (issue 15). */
  floorWriteRatio: 0.9,
  floorCpuRatio: 1.15,
  floorSocketMemoryRatio: 1.1,
  floorBroadcastRatio: 1.5,
};

/** Adds one row to the table: what it measured, its latencies if any, and whether it met its target. */
export type AddRow = (
  scenario: string,
  result: string,
  latency: LatencySummary | null | undefined,
  errors: number | null | undefined,
  dropped: number | null | undefined,
  target: string,
  ok: boolean | null,
  context?: ScenarioContext,
) => void;
export type FailedRow = (name: string, failure: Failed, target: string) => void;

export const fmt = (x: number | string | null | undefined, digits = 1): string =>
  x === null || x === undefined || Number.isNaN(x)
    ? "–"
    : typeof x === "number"
      ? x.toLocaleString("en", { maximumFractionDigits: digits })
      : String(x);
const lat = (l: LatencySummary | null | undefined): string[] =>
  l ? [l.p50, l.p90, l.p99, l.p999, l.max].map((x) => fmt(x, 1)) : ["–", "–", "–", "–", "–"];
const verdict = (ok: boolean | null): string => (ok === null ? "–" : ok ? "yes" : "NO");

type Add = (
  scenario: string,
  result: string,
  latency: LatencySummary | null | undefined,
  errors: number | null | undefined,
  dropped: number | null | undefined,
  target: string,
  ok: boolean | null,
  context?: ScenarioContext,
) => void;

/** The capacity simulation's rows (shards1, shards2, …); fills in each speed-up over one shard. */
function shardRows(s: Scenarios, add: Add, failed: (name: string, failure: Failed, target: string) => void): void {
  const keys = (Object.keys(s) as (keyof Scenarios)[])
    .filter((k): k is `shards${number}` => /^shards\d+$/.test(k))
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
  const one = s.shards1 && !("error" in s.shards1) ? s.shards1 : undefined;
  const target = "≈ linear in shards";
  for (const key of keys) {
    const row = s[key];
    if (!row) continue;
    if ("error" in row) {
      failed(key, row, target);
      continue;
    }
    const speedup = one?.okPerSecond ? round(row.okPerSecond / one.okPerSecond, 2) : null;
    row.speedupVsOneShard = speedup;
    const placed = row.conversationsPerShard;
    const spread = !placed
      ? ""
      : "error" in placed
        ? "; placement unknown (JSON)"
        : `; placed ${Object.values(placed).join("/")}`;
    const caveat = [row.sharded ? "" : "not sharded", row.gated ? "" : "not gated"].filter(Boolean).join(", ");
    add(
      `shards: ${row.shards} (D1 ${fmt(row.serviceMs, 2)} ms/statement)`,
      `${fmt(row.okPerSecond, 0)} msg/s, ×${fmt(speedup, 2)} vs 1 shard${spread}${caveat ? ` (${caveat})` : ""}`,
      row.latencyMs,
      row.errors,
      null,
      target,
      null,
      row.context,
    );
  }
}

/** The printed table's rows; also fills in the write/ceiling ratios. */
export function table(s: Scenarios): Row[] {
  const rows: Row[] = [];
  const add: AddRow = (scenario, result, latency, errors, dropped, target, ok, context) => {
    const [p50 = "–", p90 = "–", p99 = "–", p999 = "–", max = "–"] = lat(latency);
    const others = context ? fmt(context.otherProcessesCores, 2) : "";
    rows.push({
      scenario,
      result,
      p50,
      p90,
      p99,
      p999,
      max,
      errors: fmt(errors, 0),
      dropped: fmt(dropped, 0),
      target,
      met: verdict(ok),
      others,
    });
  };
  const failed: FailedRow = (name, failure, target) =>
    add(name, `ERROR: ${failure.error.split("\n")[0]?.slice(0, 60)}`, null, null, null, target, false);

  if (s.ceiling && "error" in s.ceiling) failed("ceiling", s.ceiling, "reference");
  else if (s.ceiling)
    add(
      "ceiling: GET /health",
      `${fmt(s.ceiling.okPerSecond, 0)} req/s (${s.ceiling.connections} conn)`,
      s.ceiling.latencyMs,
      s.ceiling.errors,
      null,
      "reference",
      null,
      s.ceiling.context,
    );
  if (s.write && "error" in s.write) failed("write", s.write, "≥ 40% of ceiling");
  else if (s.write) {
    const ceiling = s.ceiling && !("error" in s.ceiling) ? s.ceiling : undefined;
    const ratio = ceiling?.okPerSecond ? s.write.okPerSecond / ceiling.okPerSecond : null;
    s.write.ratioToCeiling = ratio === null ? null : round(ratio, 3);
    add(
      "write: POST /messages",
      `${fmt(s.write.okPerSecond, 0)} req/s = ${fmt(ratio === null ? null : ratio * 100, 0)}% of ceiling`,
      s.write.latencyMs,
      s.write.errors,
      null,
      "≥ 40% of ceiling",
      ratio === null ? null : ratio >= TARGETS.writeRatio,
      s.write.context,
    );
    const cost = s.write.serverCpuPerRequestMs;
    add(
      "cost: server CPU / message",
      `${fmt(cost, 3)} ms (workerd ${fmt(s.write.serverCpuUtilisation * 100, 0)}% busy)`,
      null,
      s.write.errors,
      null,
      "≤ 2 ms mean",
      cost === null ? null : cost <= TARGETS.costMsPerMessage,
      s.write.context,
    );
  }
  writeFloorRows(s, add, failed);
  for (const [name, label] of [
    ["fanout", "fan-out"],
    ["browser", "fan-out, browser-like"],
  ] as const) {
    const f = s[name];
    if (f && "error" in f) failed(name, f, "p50 ≤ 15, p99 ≤ 50 ms");
    else if (f) {
      add(
        `${label}: warm-up broadcast`,
        `1st msg to last of ${f.sockets} sockets: ${fmt(f.warmup.toLastSocketMs)} ms`,
        null,
        f.warmup.errors,
        f.warmup.droppedFrames,
        "reported apart",
        null,
        f.context,
      );
      const l = f.latencyToLastSocketMs;
      const ok =
        l.p50 !== null &&
        l.p50 <= TARGETS.fanoutP50Ms &&
        l.p99 !== null &&
        l.p99 <= TARGETS.fanoutP99Ms &&
        f.errors === 0 &&
        f.droppedFrames === 0;
      add(
        `${label}: ${f.rate} msg/s × ${f.sockets} sockets`,
        `to last socket (ext: ${f.negotiatedExtensions.join(",")})`,
        l,
        f.errors,
        f.droppedFrames,
        "p50 ≤ 15, p99 ≤ 50 ms",
        ok,
        f.context,
      );
    }
  }
  for (const key of ["capacity10", "capacity100"] as const) {
    const c = s[key];
    if (c && "error" in c) failed(key, c, "≥ 5,000 at p99 ≤ 100 ms");
    else if (c) {
      const shown = c.best ?? c.firstFailure;
      const more = c.ladderExhausted
        ? " (top of ladder)"
        : c.best
          ? ""
          : ` (failed ${fmt(c.firstFailure?.targetDeliveriesPerSecond, 0)}/s)`;
      add(
        `capacity: fan-out ${c.sockets}`,
        `${fmt(c.deliveriesPerSecond, 0)} deliveries/s (${fmt(c.messagesPerSecond, 1)} msg/s)${more}`,
        shown?.latencyToLastSocketMs,
        shown?.errors,
        shown?.droppedFrames,
        "≥ 5,000 at p99 ≤ 100 ms",
        c.deliveriesPerSecond >= TARGETS.capacityDeliveriesPerSecond,
        c.context,
      );
    }
  }
  if (s.scale && "error" in s.scale) failed("scale", s.scale, "all held, ≤ 1 GiB, ≤ 2 s");
  else if (s.scale) {
    const c = s.scale;
    const ok =
      c.allHeld &&
      c.rssMiB.peak <= TARGETS.scaleRssMiB &&
      c.firstBroadcast.reachedAll &&
      c.firstBroadcast.toLastSocketMs !== null &&
      c.firstBroadcast.toLastSocketMs <= TARGETS.scaleBroadcastMs;
    add(
      `scale: ${fmt(c.requested, 0)} idle sockets`,
      `held ${fmt(c.heldAfterIdle, 0)}${c.limitedBy ? ` (fd limit: ${fmt(c.attempted, 0)} tried)` : ""}; RSS ${fmt(c.rssMiB.afterIdle, 0)} MiB (peak ${fmt(c.rssMiB.peak, 0)}${c.limitedBy ? `, ~${fmt(c.rssMiB.projectedAtRequested, 0)} at ${fmt(c.requested, 0)}` : ""}); broadcast ${fmt(c.firstBroadcast.toLastSocketMs, 0)} ms, 2nd ${fmt(c.secondBroadcast.toLastSocketMs, 0)} ms; ${fmt(c.connect.connectsPerSecond, 0)} connects/s`,
      null,
      c.errors,
      c.droppedFrames,
      "all held, RSS ≤ 1 GiB, ≤ 2 s",
      ok,
      c.context,
    );
  }
  socketFloorRows(s, add, failed);
  if (s.history && "error" in s.history) failed("history", s.history, "deep/first ≤ 1.5");
  else if (s.history) {
    const h = s.history;
    add(
      `history: newest page (${fmt(h.messages, 0)} msgs)`,
      `${fmt(h.closedLoop.first.okPerSecond, 0)} req/s closed loop; latency at ${h.openLoop.ratePerPage}/s`,
      h.openLoop.first.latencyMs,
      h.openLoop.first.errors + h.closedLoop.first.errors,
      null,
      "reference",
      null,
      h.context,
    );
    add(
      `history: page at depth ${fmt(h.messages, 0)}`,
      `${fmt(h.closedLoop.deep.okPerSecond, 0)} req/s; deep/first p50 ${fmt(h.ratioP50, 2)}, p99 ${fmt(h.ratioP99, 2)}`,
      h.openLoop.deep.latencyMs,
      h.openLoop.deep.errors + h.closedLoop.deep.errors,
      null,
      "deep/first ≤ 1.5",
      h.ratioP50 <= TARGETS.historyRatio,
      h.context,
    );
  }
  const wd = s["wrangler-dev"];
  if (wd && "error" in wd) failed("wrangler-dev", wd, "comparison");
  else if (wd) {
    add(
      "wrangler dev: GET /health",
      `${fmt(wd.ceiling.okPerSecond, 0)} req/s`,
      wd.ceiling.latencyMs,
      wd.ceiling.errors,
      null,
      "comparison",
      null,
      wd.context,
    );
    const ratio = wd.write.okPerSecond / wd.ceiling.okPerSecond;
    wd.write.ratioToCeiling = round(ratio, 3);
    add(
      "wrangler dev: POST /messages",
      `${fmt(wd.write.okPerSecond, 0)} req/s = ${fmt(ratio * 100, 0)}%; ${fmt(wd.write.serverCpuPerRequestMs, 2)} ms CPU/msg (all of wrangler dev)`,
      wd.write.latencyMs,
      wd.write.errors,
      null,
      "comparison",
      null,
      wd.context,
    );
  }
  const at = s.attachments;
  if (at && "error" in at) failed("attachments", at, "comparison");
  else if (at) {
    for (const p of at.parley) {
      const f = at.floor.find((x) => x.sizeMiB === p.sizeMiB);
      add(
        `attachments ${p.sizeMiB} MiB (${at.server})`,
        `up ${fmt(p.uploadMiBps)} MiB/s (floor ${fmt(f?.uploadMiBps)}), down ${fmt(p.downloadMiBps)} MiB/s (floor ${fmt(f?.downloadMiBps)})`,
        null,
        null,
        null,
        "vs bare R2 Worker",
        null,
        at.context,
      );
    }
  }
  shardRows(s, add, failed);
  const push = s.push;
  if (push && "error" in push) failed("push", push, "comparison");
  else if (push) {
    add(
      `push: fan-out ${push.members}, ${push.offline} offline (wrangler dev)`,
      `${fmt(push.pushPathCpuMs)} ms CPU/msg for ${fmt(push.pushesPerMessage, 0)} pushes (${fmt(push.pushPathCpuMsPerPush, 2)} ms each); all pushed in ${fmt(push.allPushedMsP50, 0)} ms`,
      null,
      null,
      null,
      "cost",
      null,
      push.context,
    );
  }
  return rows;
}
