// The phases of a run, in order: build and migrate, seed, the HTTP scenarios, the socket scenarios
// (each on a fresh server), and the wrangler dev comparison.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SHARD_ID_STRIDE } from "../../src/db/shard-ids.ts";
import { migrateAll, wrangler, wranglerEnv } from "../../tools/harness/index.ts";
import { createConversation, historySql, loginUsers, registerUsers, type User } from "../lib/seed.ts";
import { type PlainWorkerd, WranglerDev } from "../lib/servers.ts";
import type { SocketGroup, SocketKind } from "../lib/sockets.ts";
import { ceiling, history, type WriteConversation, write } from "../scenarios/http.ts";
import { type Conversation, capacity, fanout, type OpenedGroup, openGroup, scale } from "../scenarios/sockets.ts";
import { attempt, type RunContext } from "./context.ts";
import { buildBenchBundle, floorSocketsScenario, floorWriteScenario } from "./floors-phase.ts";

/** Environment for wrangler commands: quiet, offline, no colours in the logs. */
const env = () => wranglerEnv({ NO_COLOR: "1" });

/** The bench's bundle (unless one was given: Parley and the floors) and a fresh local D1, at the same time. */
export async function prepare(ctx: RunContext): Promise<string> {
  const { runDir, persistDir, allCores, options } = ctx;
  ctx.log(
    options.bundleOverride
      ? `using the bundle ${options.bundleOverride}; applying migrations…`
      : "building the bundle (wrangler deploy --dry-run of bench/floor/entry.ts) and applying migrations to a fresh local D1…",
  );
  const bundleDir = join(runDir, "bundle");
  const [built] = await Promise.all([
    options.bundleOverride
      ? undefined
      : buildBenchBundle(bundleDir, { env: env(), cpu: allCores, output: { file: join(runDir, "build.log") } }),
    migrateAll(persistDir, { env: env(), cpu: allCores, output: { file: join(runDir, "migrate.log") } }),
  ]);
  return options.bundleOverride ?? built ?? join(bundleDir, "entry.js");
}

export interface Seeded {
  users: User[];
  writeConversations: WriteConversation[];
  history: Conversation;
  fan100: Conversation;
  fan10: Conversation;
  browser100: Conversation;
  scale: Conversation;
}

/** Users, tokens and conversations through the public API; the history messages with SQL, server stopped. */
export async function seed(ctx: RunContext, server: PlainWorkerd): Promise<Seeded> {
  const { P } = ctx;
  await server.start();
  ctx.log(`workerd serve ready on ${server.base} (pid ${server.pid}); seeding ${P.users} users and conversations…`);
  const seedStart = Date.now();
  const users = await registerUsers(server.base, P.users);
  await loginUsers(server.base, users);
  const writeConversations: WriteConversation[] = [];
  for (let i = 0; i < 10; i++) {
    const members = [users[(2 * i) % P.users]!, users[(2 * i + 1) % P.users]!];
    writeConversations.push({
      id: await createConversation(server.base, members, `write ${i}`),
      sender: members[0]!,
      members,
    });
  }
  const group = async (title: string, n: number): Promise<Conversation> => {
    const members = users.slice(0, n);
    return { id: await createConversation(server.base, members, title), members };
  };
  const seeded: Seeded = {
    users,
    writeConversations,
    history: await group("history", 2),
    fan100: await group("fan-out 100", Math.min(100, P.users)),
    fan10: await group("fan-out 10", 10),
    browser100: await group("browser-like 100", Math.min(100, P.users)),
    scale: await group("scale", Math.min(100, P.users)),
  };
  const seedApiMs = Date.now() - seedStart;
  await server.stop();

  if (ctx.runs("history")) {
    ctx.log(`seeding ${P.historyMessages.toLocaleString("en")} history messages with wrangler d1 execute…`);
    const sqlFile = join(ctx.runDir, "history.sql");
    writeFileSync(
      sqlFile,
      historySql({ conversationId: seeded.history.id, sender: users[0]!, count: P.historyMessages }),
    );
    const started = Date.now();
    const binding = `SHARD_${seeded.history.id % SHARD_ID_STRIDE}`;
    await wrangler(["d1", "execute", binding, "--local", "--persist-to", ctx.persistDir, "--file", sqlFile, "--yes"], {
      env: env(),
      cpu: ctx.allCores,
      output: { file: join(ctx.runDir, "seed-history.log") },
    });
    ctx.scenarios.seeding = { apiMs: seedApiMs, historyMs: Date.now() - started, historyMessages: P.historyMessages };
  } else {
    ctx.scenarios.seeding = { apiMs: seedApiMs };
  }
  return seeded;
}

/** The HTTP scenarios, on a fresh server. */
export async function httpScenarios(ctx: RunContext, server: PlainWorkerd, seeded: Seeded): Promise<void> {
  const { P } = ctx;
  await server.start();
  ctx.log(`workerd serve restarted (pid ${server.pid})`);
  await attempt(ctx, "ceiling", () => ceiling({ server, connections: P.httpConnections, durationS: P.httpS }), server);
  await attempt(
    ctx,
    "write",
    () =>
      write({
        server,
        conversations: seeded.writeConversations,
        connections: P.httpConnections,
        durationS: P.httpS,
      }),
    server,
  );
  await floorWriteScenario(ctx, server, seeded);
  await attempt(
    ctx,
    "history",
    () =>
      history({
        server,
        conversationId: seeded.history.id,
        user: seeded.users[0]!,
        messages: P.historyMessages,
        rate: P.historyRate,
        durationS: P.historyS,
        throughputS: P.historyThroughputS,
      }),
    server,
  );
}

/**
 * The socket scenarios, each on a fresh server: what one leaves behind (a backlog of inbox forwards,
 * sockets still closing) must not weigh on the next, and scale's memory figures are its own.
 */
export async function socketScenarios(ctx: RunContext, server: PlainWorkerd, seeded: Seeded): Promise<void> {
  const { P } = ctx;
  const fresh = async (what: string) => {
    await server.stop();
    await server.start();
    ctx.log(`workerd serve restarted for ${what} (pid ${server.pid})`);
  };
  const socketScenario = async <T extends object>(
    name: "fanout" | "browser" | "capacity10" | "capacity100",
    kind: SocketKind,
    conversation: Conversation,
    count: number,
    body: (g: OpenedGroup) => Promise<T>,
  ) => {
    if (!ctx.runs(name)) return;
    await fresh(name);
    await attempt(
      ctx,
      name,
      async () => {
        const g = await openGroup({ server, kind, conversation, count });
        try {
          const run = await body(g);
          return {
            members: conversation.members.length,
            connect: g.connect,
            negotiatedExtensions: g.negotiatedExtensions,
            warmup: g.warmup,
            ...run,
          };
        } finally {
          await g.group.closeAll();
        }
      },
      server,
    );
  };
  const steady = (conversation: Conversation, durationS: number) => (g: { group: SocketGroup }) =>
    fanout({ server, conversation, group: g.group, rate: P.fanoutRate, durationS });
  const ladder = (conversation: Conversation) => (g: { group: SocketGroup }) =>
    capacity({ server, conversation, group: g.group, ladder: P.capacityLadder, stepS: P.capacityStepS });
  await socketScenario("fanout", "ws", seeded.fan100, P.fanoutSockets, steady(seeded.fan100, P.fanoutS));
  await socketScenario("browser", "browser", seeded.browser100, P.fanoutSockets, steady(seeded.browser100, P.browserS));
  await socketScenario("capacity100", "ws", seeded.fan100, P.fanoutSockets, ladder(seeded.fan100));
  await socketScenario("capacity10", "ws", seeded.fan10, 10, ladder(seeded.fan10));
  if (ctx.runs("scale")) {
    await fresh("scale");
    await attempt(
      ctx,
      "scale",
      () =>
        scale({
          server,
          conversation: seeded.scale,
          count: P.scaleSockets,
          idleS: P.scaleIdleS,
          deadlineMs: P.scaleDeadlineS * 1000,
        }),
      server,
    );
  }
  await floorSocketsScenario(ctx, server, seeded);
  await server.stop();
}

/** The HTTP scenarios again under wrangler dev, on the same persisted state (for comparison). */
export async function wranglerDevScenario(ctx: RunContext, seeded: Seeded): Promise<void> {
  if (!ctx.runs("wrangler-dev")) return;
  const { P } = ctx;
  const dev = new WranglerDev({
    runDir: ctx.runDir,
    persistDir: ctx.persistDir,
    secret: ctx.secret,
    cpu: ctx.serverCpu,
  });
  let pid: number[] | undefined;
  try {
    await dev.start();
    if (!dev.pid) throw new Error("could not find wrangler dev's workerd processes");
    pid = dev.pid;
    ctx.log(`wrangler dev ready on ${dev.base} (pids ${dev.pid}; workerd ${dev.workerdPids})`);
  } catch (e) {
    const err = e as Error;
    ctx.log(`wrangler dev FAILED to start: ${err.stack ?? err}`);
    ctx.scenarios["wrangler-dev"] = { error: String(err.message ?? err).slice(0, 2000) };
  }
  if (pid) {
    const measured = { kind: dev.kind, base: dev.base, wsBase: dev.wsBase, pid };
    await attempt(
      ctx,
      "wrangler-dev",
      async () => {
        // Tokens from wrangler dev's own login, whatever secret it ended up with.
        const senders = seeded.writeConversations.map((c) => ({ ...c.sender }));
        await loginUsers(dev.base, senders);
        const conversations = seeded.writeConversations.map((c, i) => ({ ...c, sender: senders[i]! }));
        const c = await ceiling({ server: measured, connections: P.httpConnections, durationS: P.httpS });
        const w = await write({
          server: measured,
          conversations,
          connections: P.httpConnections,
          durationS: P.httpS,
          tag: "wd",
        });
        return { ceiling: c, write: w };
      },
      dev,
    );
  }
  await dev.stop();
}
