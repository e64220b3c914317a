// The run's phases before the checks: users and conversations, the load (senders, socket chaos, the
// server killed at spread-out moments, one member removed mid-run), then the quiet wait for live delivery.
import { randomKeys } from "../../tools/wire/index.ts";
import { Client, type Held } from "./client.ts";
import { type RunContext, type SentMessage, SoakError, sleep } from "./context.ts";
import { expect } from "./http.ts";
import { LIVE_WAIT_MS } from "./options.ts";
import { removeMidRun } from "./removal.ts";
import { sendLoop } from "./send.ts";
import { chaosLoop, startSockets, stopSockets } from "./sockets.ts";

export interface Population {
  clients: Client[];
  /** The members of each conversation, in the order of `conversationIds`. */
  members: Set<Client>[];
  conversationIds: number[];
}

/** Users, then conversations: client i is in conversation i mod K, and half of them in one more. */
export async function populate(ctx: RunContext): Promise<Population> {
  const { clients: count, conversations } = ctx.options;
  const clients = Array.from({ length: count }, (_, i) => new Client(ctx, i));
  for (const client of clients) await client.register();
  const members = Array.from({ length: conversations }, () => new Set<Client>());
  clients.forEach((client, i) => {
    members[i % conversations]!.add(client);
    if (conversations > 1 && ctx.chance(0.5))
      members[((i % conversations) + ctx.between(1, conversations - 1)) % conversations]!.add(client);
  });
  for (const set of members) if (set.size < 2) set.add(clients.find((c) => !set.has(c))!);
  // One conversation keeps two members after the mid-run removal.
  if (count >= 3 && members.every((set) => set.size < 3)) members[0]!.add(clients.find((c) => !members[0]!.has(c))!);
  const conversationIds: number[] = [];
  for (const set of members) {
    const [creator] = set;
    const res = await creator!.authed("POST", "/conversations", {
      title: "soak",
      participants: [...set].map((c) => c.username),
      keys: randomKeys([...set].map((c) => c.deviceId)), // epoch 1, one (random) wrap per device
    });
    const id: number = expect(res, 201, "create conversation").conversationId;
    // Contract v2's consent: the others join as message requests and must accept before posting.
    for (const c of set) {
      if (c !== creator) expect(await c.authed("POST", `/conversations/${id}/accept`), 200, "accept conversation");
    }
    conversationIds.push(id);
    for (const c of set) c.join(id);
  }
  ctx.log(
    `conversations ${conversationIds.map((id, k) => `${id}: ${[...members[k]!].map((c) => `c${c.index}`).join(" ")}`).join(" | ")}`,
  );
  return { clients, members, conversationIds };
}

/** The load phase; resolves once the load, the restarts and the chaos are over. */
export async function load(ctx: RunContext, population: Population): Promise<() => void> {
  const { clients } = population;
  const { seconds, restarts: restartCount, restartAt } = ctx.options;
  for (const client of clients) startSockets(client);
  const loadStart = Date.now();
  const loadEndsAt = loadStart + seconds * 1000;
  const senders = clients.map((c) => sendLoop(c, loadEndsAt));
  const chaos = clients.map((c) => chaosLoop(c).catch(ctx.fatal));
  const progress = setInterval(() => {
    const open = clients.reduce((n, c) => n + c.sockets.filter((t) => t.ws).length, 0);
    const total = clients.reduce((n, c) => n + c.sockets.length, 0);
    ctx.log(
      `sent ${ctx.stats.sent}, acked ${ctx.stats.acknowledged}, POSTs in flight ${ctx.inFlightPosts}, sockets open ${open}/${total}, ` +
        `restarts ${ctx.stats.serverRestarts}, anomalies ${ctx.anomalies.length}`,
    );
  }, 5000);
  const restarts = (async () => {
    for (let r = 1; r <= restartCount; r++) {
      // Spread over the load phase, each somewhere in the middle of its slot (or where --restart-at says).
      const slot = (seconds * 1000) / restartCount;
      const at = restartAt
        ? loadStart + restartAt[r - 1]! * 1000
        : loadStart + slot * (r - 1) + slot * (0.3 + 0.4 * ctx.rng());
      await sleep(Math.max(0, at - Date.now()));
      while (ctx.inFlightPosts === 0 && Date.now() < at + 2000) await sleep(5); // kill with requests in flight
      await ctx.server.crashAndRestart();
    }
  })().catch(ctx.fatal);

  const removal = (async () => {
    await sleep(Math.max(0, loadStart + seconds * 1000 * (0.35 + 0.2 * ctx.rng()) - Date.now()));
    await removeMidRun(ctx, population);
  })().catch(ctx.fatal);

  await Promise.all(senders);
  ctx.loadOver = true;
  if (ctx.fatalError) throw ctx.fatalError;
  ctx.log(
    `load over: ${ctx.stats.sent} sent, ${ctx.stats.acknowledged} acknowledged; waiting for restarts and retries to finish`,
  );
  await Promise.all([restarts, removal, ...chaos]);
  return () => clearInterval(progress);
}

/** Acknowledged messages of `conv` that `client`'s view lacks (for a removed member: up to its last catch-up). */
const missingFrom = (acked: SentMessage[], conv: Held) =>
  acked.filter(
    (r) =>
      r.conversationId === conv.id &&
      !conv.held.has(r.ack!.messageId) &&
      (!conv.removed || r.ack!.seq <= conv.removed.caughtUpTo),
  );

export interface LiveDelivery {
  liveWait: {
    outstandingAtStart: number;
    seconds: number;
    viaSocket: number;
    viaRest: number;
    gapCatchUps: number;
    socketCloses: Record<string, number>;
  };
  liveMissingAtQuiet: number;
  liveDeliveryMs: number;
  missingBeforeFinal: number;
  liveMisses: Record<string, unknown>[];
}

/**
 * Quiesce: no more messages; wait until every socket is open again and has caught up. Live delivery
 * (sockets + the recipe) should then bring every acknowledged message to every member without any
 * further REST call: wait for that a while, and report what is still missing.
 */
export async function awaitLiveDelivery(
  ctx: RunContext,
  { clients }: Population,
  stopProgress: () => void,
): Promise<LiveDelivery> {
  const { stats } = ctx;
  const quiesceDeadline = Date.now() + 60_000;
  while (clients.some((c) => c.sockets.some((t) => !t.ready))) {
    if (ctx.fatalError) throw ctx.fatalError;
    if (Date.now() > quiesceDeadline) throw new SoakError("sockets did not all reconnect within 60 s after the load");
    await sleep(100);
  }
  const acked = [...ctx.sentMessages.values()].filter((r) => r.ack);
  const stillMissing = () =>
    clients.reduce((n, c) => n + [...c.convs.values()].reduce((k, conv) => k + missingFrom(acked, conv).length, 0), 0);
  const quietSince = Date.now();
  const liveMissingAtQuiet = stillMissing();
  const before = {
    socket: stats.receivedViaSocket,
    rest: stats.caughtUpViaRest,
    closes: { ...stats.socketCloses },
    gapCatchUps: stats.gapCatchUps,
  };
  while (stillMissing() > 0 && Date.now() - quietSince < LIVE_WAIT_MS) await sleep(100);
  const liveDeliveryMs = Date.now() - quietSince;
  const liveWait = {
    outstandingAtStart: liveMissingAtQuiet,
    seconds: Number((liveDeliveryMs / 1000).toFixed(1)),
    viaSocket: stats.receivedViaSocket - before.socket,
    viaRest: stats.caughtUpViaRest - before.rest,
    gapCatchUps: stats.gapCatchUps - before.gapCatchUps,
    socketCloses: Object.fromEntries(
      Object.entries(stats.socketCloses)
        .map(([k, v]) => [k, v - (before.closes[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    ),
  };
  if (liveMissingAtQuiet) ctx.log(`live delivery after the load: ${JSON.stringify(liveWait)}`);
  stopProgress();
  return { liveWait, liveMissingAtQuiet, liveDeliveryMs, ...liveMisses(ctx, clients, acked) };
}

/** What live delivery achieved, before the final catch-up. */
function liveMisses(ctx: RunContext, clients: Client[], acked: SentMessage[]) {
  let missingBeforeFinal = 0;
  const misses: Record<string, unknown>[] = [];
  for (const client of clients) {
    for (const conv of client.convs.values()) {
      const missing = missingFrom(acked, conv).map((r) => r.ack!.seq);
      if (missing.length === 0) continue;
      missingBeforeFinal += missing.length;
      const target = client.sockets.find((t) => t.kind === "inbox" || t.conv === conv)!;
      misses.push({
        client: client.index,
        socket: target.kind,
        conversationId: conv.id,
        missing: missing.length,
        seqs: `${Math.min(...missing)}..${Math.max(...missing)}`,
        heldContiguous: conv.contiguousSeq,
        lastSocketSeq: target.lastSeq.get(conv.id) ?? null,
        socketOpenedAt: target.openedAt,
        lastFrameAt: conv.lastFrameAt ?? null,
      });
    }
  }
  if (misses.length) {
    // Not a loss (the final catch-up must still find them), but the contract says connected
    // participants receive every newMessage: worth a look (see test-results/soak.json, liveMisses).
    ctx.log(
      `WARNING: ${missingBeforeFinal} acknowledged message deliveries never arrived live (sockets open, ${LIVE_WAIT_MS / 1000} s):`,
    );
    for (const m of misses) ctx.log(`  ${JSON.stringify(m)}`);
  }
  return { missingBeforeFinal, liveMisses: misses };
}

/** The sockets stop, then every client catches up one last time. */
export async function finalCatchUp(ctx: RunContext, { clients }: Population): Promise<void> {
  ctx.socketsStopping = true;
  await Promise.all(clients.map((c) => stopSockets(c)));
  if (ctx.fatalError) throw ctx.fatalError;
  await Promise.all(clients.flatMap((c) => [...c.convs.values()].map((conv) => c.catchUp(conv, "final"))));
}
