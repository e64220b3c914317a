// HTTP scenarios: ceiling (GET /health), write (POST /messages) with its CPU cost, history depth.

import { performance } from "node:perf_hooks";
import autocannon, { type Options as CannonOptions, type Result as CannonResult } from "autocannon";
import { openLoop, type Response, request, round } from "../lib/http.ts";
import { messageBody, type User } from "../lib/seed.ts";
import type { BenchServer } from "../lib/servers.ts";
import { fromAutocannon, Histogram, type LatencySummary } from "../lib/stats.ts";
import { cpuMs } from "../lib/system.ts";

/** A server whose CPU can be read (its `pid` is set). */
type Measured = BenchServer;

function cannon(opts: CannonOptions): Promise<CannonResult> {
  return new Promise((resolve, reject) => {
    autocannon({ pipelining: 1, timeout: 10, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

export interface HttpSummary {
  connections: number;
  durationS: number;
  requests: number;
  ok: number;
  okPerSecond: number;
  errors: number;
  non2xx: number;
  networkErrors: number;
  timeouts: number;
  latencyMs: LatencySummary;
  serverCpuMs: number;
  serverCpuPerRequestMs: number | null;
  serverCpuUtilisation: number;
  conversations?: number;
  ratioToCeiling?: number | null;
}

function summarise(result: CannonResult, serverCpuMs: number): HttpSummary {
  const ok = result["2xx"];
  const seconds = result.duration;
  return {
    connections: result.connections,
    durationS: round(seconds),
    requests: result.requests.total,
    ok,
    okPerSecond: round(ok / seconds, 1),
    errors: result.errors + result.timeouts + result.non2xx,
    non2xx: result.non2xx,
    networkErrors: result.errors,
    timeouts: result.timeouts,
    latencyMs: fromAutocannon(result.latency),
    serverCpuMs: round(serverCpuMs),
    serverCpuPerRequestMs: ok > 0 ? round(serverCpuMs / ok, 3) : null,
    serverCpuUtilisation: round(serverCpuMs / (seconds * 1000), 3),
  };
}

/** Closed loop, `connections` keep-alive connections: GET /health as fast as the server answers. */
export async function ceiling({
  server,
  connections,
  durationS,
}: {
  server: Measured;
  connections: number;
  durationS: number;
}): Promise<HttpSummary> {
  const cpu0 = cpuMs(server.pid!);
  const result = await cannon({ url: `${server.base}/health`, connections, duration: durationS });
  return summarise(result, cpuMs(server.pid!) - cpu0);
}

/**
 * Closed loop, `connections` connections, POST /messages spread round-robin over `conversations`
 * (each sent by one of its participants, with a unique clientMessageId as real clients do). The
 * server's CPU time over the run divided by the messages stored is the `cost` scenario.
 */
export interface WriteConversation {
  id: number;
  sender: User;
  members: User[];
}

export async function write({
  server,
  conversations,
  connections,
  durationS,
  tag = "w",
  path = "/messages",
}: {
  server: Measured;
  conversations: WriteConversation[];
  connections: number;
  durationS: number;
  /** Prefix of the clientMessageIds: unique per run, or Parley would answer repeats as retries. */
  tag?: string;
  /** Where to POST: Parley's `/messages` or the write floor's. */
  path?: string;
}): Promise<HttpSummary> {
  let k = 0;
  const cpu0 = cpuMs(server.pid!);
  const result = await cannon({
    url: server.base,
    connections,
    duration: durationS,
    requests: [
      {
        method: "POST",
        path,
        setupRequest: (req) => {
          const c = conversations[k % conversations.length]!;
          k++;
          return {
            ...req,
            headers: { "content-type": "application/json", authorization: `Bearer ${c.sender.token}` },
            body: messageBody(c.id, `${tag}-${k}`),
          };
        },
      },
    ],
  });
  const out = summarise(result, cpuMs(server.pid!) - cpu0);
  out.conversations = conversations.length;
  return out;
}

/**
 * History at the newest end vs at depth: both pages are requested in one open-loop run
 * (alternating, so both see the same conditions), then each alone in a closed loop for throughput.
 */
export async function history({
  server,
  conversationId,
  user,
  messages,
  rate,
  durationS,
  throughputS,
  connections = 8,
}: {
  server: BenchServer;
  conversationId: number;
  user: User;
  messages: number;
  rate: number;
  durationS: number;
  throughputS: number;
  connections?: number;
}) {
  const first = `/conversations/${conversationId}/messages?limit=50`;
  const newest = await request(server.base, "GET", first, { token: user.token });
  if (newest.status !== 200) throw new Error(`history: first page ${newest.status} ${newest.text.slice(0, 200)}`);
  const page = newest.json();
  const maxId = page[0]?.messageId;
  const newestSeq = page[0]?.seq;
  if (page.length !== 50 || newestSeq !== messages) {
    throw new Error(
      `history: expected 50 messages ending at seq ${messages}, got ${page.length} ending at ${newestSeq}`,
    );
  }
  // The seed is one INSERT, so ids are contiguous: the oldest is maxId - messages + 1.
  const deepBefore = maxId - messages + 51;
  const deep = `/conversations/${conversationId}/messages?limit=50&before=${deepBefore}`;
  const deepPage = await request(server.base, "GET", deep, { token: user.token });
  const deepRows = deepPage.status === 200 ? deepPage.json() : [];
  const deepOk = (res: Response) => {
    const rows: { seq: number }[] = res.json();
    return rows.length === 50 && rows[0].seq === 50 && rows[49].seq === 1;
  };
  if (!deepOk(deepPage)) {
    throw new Error(
      `history: deep page wrong: ${deepPage.status}, ${deepRows.length} rows, seq ${deepRows[0]?.seq}…${deepRows.at(-1)?.seq}`,
    );
  }

  // Closed loop first: how many pages a second the server serves at each end.
  const closed = {} as Record<"first" | "deep", { okPerSecond: number; errors: number; latencyMs: LatencySummary }>;
  for (const [which, path] of [
    ["first", first],
    ["deep", deep],
  ] as const) {
    const result = await cannon({
      url: `${server.base}${path}`,
      connections,
      duration: throughputS,
      headers: { authorization: `Bearer ${user.token}` },
    });
    closed[which] = {
      okPerSecond: round(result["2xx"] / result.duration, 1),
      errors: result.errors + result.timeouts + result.non2xx,
      latencyMs: fromAutocannon(result.latency),
    };
  }
  // Then latency in an open loop, both pages alternating (so both see the same conditions), at a
  // rate the server can sustain (at most a quarter of the slower closed-loop figure), or queueing
  // would dominate what is measured.
  const perPage = Math.max(
    1,
    Math.min(rate, Math.floor(Math.min(closed.first.okPerSecond, closed.deep.okPerSecond) / 4)),
  );
  const hists = { first: new Histogram(), deep: new Histogram() };
  const errors = { first: 0, deep: 0 };
  const run = await openLoop({
    rate: perPage * 2,
    durationMs: durationS * 1000,
    send: async (k, intended) => {
      const which = k % 2 === 0 ? ("first" as const) : ("deep" as const);
      const res = await request(server.base, "GET", which === "first" ? first : deep, { token: user.token });
      hists[which].recordMs(performance.now() - intended);
      if (res.status !== 200 || (which === "deep" && !deepOk(res)) || (which === "first" && res.json().length !== 50))
        errors[which]++;
    },
  });
  await Promise.all(run.inFlight);

  const firstLat = hists.first.summary();
  const deepLat = hists.deep.summary();
  return {
    messages,
    pageSize: 50,
    deepBefore,
    openLoop: {
      ratePerPage: perPage,
      durationS,
      generatorMaxLagMs: round(run.maxLagMs),
      first: { latencyMs: firstLat, errors: errors.first },
      deep: { latencyMs: deepLat, errors: errors.deep },
    },
    closedLoop: { connections, durationS: throughputS, ...closed },
    ratioP50: round(Number(deepLat.p50) / Number(firstLat.p50), 3),
    ratioP99: round(Number(deepLat.p99) / Number(firstLat.p99), 3),
    ratioThroughput: round(closed.first.okPerSecond / closed.deep.okPerSecond, 3),
    errors: errors.first + errors.deep + closed.first.errors + closed.deep.errors,
  };
}
