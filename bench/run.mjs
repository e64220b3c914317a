#!/usr/bin/env node
// Parley benchmark suite (issue 5). `npm run bench` (≈5 min) or `npm run bench -- --quick` (< 2 min).
// See bench/README.md for what each scenario measures and how.
//
// Options: --quick            shorter runs, 10k-message history, 2,000 sockets for scale
//          --only=a,b          run only these scenarios (ceiling, write, history, fanout, browser,
//                              capacity, scale, wrangler-dev); seeding always runs
//          --wrangler-dev / --no-wrangler-dev   force the wrangler dev HTTP rows on/off
//                              (default: on for the full run, off for --quick)
//          --keep              keep the temporary directory (logs, persisted state)
//          --bundle=FILE       serve this bundle instead of building one (to measure a patch)
//          --profile           CPU-profile workerd's isolates during each scenario (use with --only; the
//                              figures of a profiled run are not benchmark figures); writes
//                              bench/results/profiles/*.cpuprofile and prints the top functions
//          --disk              keep server state under $TMPDIR instead of /dev/shm (see README: fsync)
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join, relative, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { agent, round } from "./lib/http.mjs";
import { cpuMs, hasTaskset, killAll, machineCpu, pinSelf, runCommand, waitIdle } from "./lib/procs.mjs";
import { bundleModules, startProfiling, summariseProfile } from "./lib/profiler.mjs";
import { createConversation, historySql, loginUsers, mintTokens, registerUsers } from "./lib/seed.mjs";
import { PlainWorkerd, readWranglerConfig, WranglerDev, wranglerBin, wranglerEnv } from "./lib/servers.mjs";
import { runtimePaths } from "./lib/workerd.mjs";
import { ceiling, history, write } from "./scenarios/http.mjs";
import { capacity, fanout, openGroup, scale } from "./scenarios/sockets.mjs";

const require = createRequire(import.meta.url);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const keep = argv.includes("--keep");
const only = argv
  .find((a) => a.startsWith("--only="))
  ?.slice(7)
  .split(",");
const wantWranglerDev = argv.includes("--wrangler-dev") || (!quick && !argv.includes("--no-wrangler-dev"));
const profiling = argv.includes("--profile");
const bundleArg = argv.find((a) => a.startsWith("--bundle="))?.slice(9);
const bundleOverride = bundleArg && resolvePath(bundleArg);
const runs = (name) => (only ? only.some((o) => name.startsWith(o)) : name !== "wrangler-dev" || wantWranglerDev);

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(
    `bench: Node ${process.versions.node} is too old for wrangler; run it with \`npm run bench\` (uses the project's Node 24).`,
  );
  process.exit(1);
}

// Parameters. Durations are fixed; every scenario stops by itself.
const P = quick
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
    };

// 10,000 client sockets need as many file descriptors here (and in workerd, which inherits the limit).
const openFilesLimit = (() => {
  try {
    return Number(/^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1]) || Infinity;
  } catch {
    return Infinity;
  }
})();
const scaleCap = Math.max(100, openFilesLimit - 1000);

const t0 = Date.now();
const log = (msg) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

// Server on core 0, this process (the load generator) on core 1.
const cores = os.availableParallelism?.() ?? os.cpus().length;
const serverCpu = cores >= 2 && hasTaskset ? 0 : undefined;
const generatorPinned = cores >= 2 && hasTaskset ? pinSelf(1) : false;

// Server state on tmpfs by default: workerd fsyncs every Durable Object / D1 commit on its one
// thread, and this VM's disk takes ~3-6 ms per fsync, which would swamp what Parley's code costs.
const onDisk = argv.includes("--disk") || !existsSync("/dev/shm");
const runDir = mkdtempSync(join(onDisk ? os.tmpdir() : "/dev/shm", "parley-bench-"));
const persistDir = join(runDir, "persist");
mkdirSync(persistDir, { recursive: true });
const secret = randomBytes(32).toString("hex");
const scenarios = {};
const notes = [];
const profiles = {};

function machine() {
  const cpuinfo = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown",
    cores,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

function versions() {
  const rt = runtimePaths();
  let workerdBuild = null;
  try {
    workerdBuild = execFileSync(rt.workerdBin, ["--version"], { encoding: "utf8" }).trim();
  } catch {}
  const pkg = (name) => {
    try {
      return require(`${name}/package.json`).version;
    } catch {
      return null;
    }
  };
  return {
    node: process.version,
    wrangler: pkg("wrangler"),
    workerd: rt.workerdVersion,
    workerdBuild,
    miniflare: rt.miniflareVersion,
    autocannon: pkg("autocannon"),
    ws: pkg("ws"),
    hdrHistogramJs: pkg("hdr-histogram-js"),
  };
}

/**
 * Runs one scenario: first waits for the server to be idle (what the previous one left behind is
 * not billed to this one), then records how much CPU other processes on the machine used meanwhile.
 */
async function attempt(name, fn, server) {
  if (!runs(name)) return undefined;
  let settle;
  const pid = server?.pid;
  if (pid) settle = await waitIdle(pid, { maxMs: quick ? 8000 : 30_000 });
  log(
    `${name}…${settle && settle.ms > 1000 ? ` (server busy ${(settle.ms / 1000).toFixed(1)} s with earlier work first)` : ""}`,
  );
  const profiler = profiling && server?.inspectorPort ? await startProfiling(server.inspectorPort) : undefined;
  const m0 = machineCpu();
  const s0 = pid ? cpuMs(pid) : 0;
  const own0 = process.cpuUsage();
  try {
    const result = await fn();
    if (profiler) await saveProfiles(name, await profiler.stop(), server.bundleFile);
    const m1 = machineCpu();
    const own = process.cpuUsage(own0);
    const serverMs = pid && server.pid === pid ? cpuMs(pid) - s0 : 0;
    const wall = m1.at - m0.at;
    result.context = {
      wallS: round(wall / 1000, 1),
      settleBefore: settle ?? null,
      serverCores: round(serverMs / wall, 2),
      loadGeneratorCores: round((own.user + own.system) / 1000 / wall, 2),
      otherProcessesCores: round((m1.busyMs - m0.busyMs - serverMs - (own.user + own.system) / 1000) / wall, 2),
    };
    scenarios[name] = result;
    return result;
  } catch (err) {
    log(`${name} FAILED: ${err.stack ?? err}`);
    scenarios[name] = { error: String(err.message ?? err).slice(0, 2000) };
    return undefined;
  }
}

async function saveProfiles(name, byTarget, bundleFile) {
  const dir = join(root, "bench", "results", "profiles");
  mkdirSync(dir, { recursive: true });
  const moduleOf = bundleModules(bundleFile);
  profiles[name] = {};
  for (const [target, profile] of Object.entries(byTarget)) {
    const file = join(dir, `${name}-${target.replaceAll(":", "_")}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    const summary = summariseProfile(profile, (frame) =>
      frame.url.endsWith("worker.js") ? moduleOf(frame.lineNumber) : "",
    );
    profiles[name][target] = {
      file: relative(root, file),
      busyMs: summary.busyMs,
      top: summary.top.slice(0, 25),
      totals: summary.totals.slice(0, 40),
    };
  }
}

function printProfiles() {
  for (const [name, byTarget] of Object.entries(profiles)) {
    for (const [target, p] of Object.entries(byTarget)) {
      console.log(`\nprofile ${name} / ${target}: ${p.busyMs} ms of JavaScript (${p.file})`);
      console.log("  self ms  total ms  function");
      for (const row of p.top.slice(0, 15))
        console.log(`  ${String(row.selfMs).padStart(7)}  ${String(row.totalMs).padStart(8)}  ${row.function}`);
    }
  }
}

async function main() {
  const mach = machine();
  const vers = versions();
  log(
    `Parley bench (${quick ? "quick" : "full"}) in ${runDir}; server core ${serverCpu ?? "any"}, load generator core ${generatorPinned ? 1 : "any"}`,
  );
  if (serverCpu === undefined)
    notes.push("taskset or a second core unavailable: server and load generator were not pinned");
  if (P.scaleSockets > scaleCap) {
    notes.push(
      `scale: only ${scaleCap} sockets, the open-files limit being ${openFilesLimit} (raise it with ulimit -n)`,
    );
    P.scaleSockets = scaleCap;
  }

  const wranglerConfig = readWranglerConfig(root);
  const env = wranglerEnv();

  // Set-up commands may use every core (this process is pinned, and children inherit that).
  const allCores = hasTaskset ? `0-${cores - 1}` : undefined;
  log(
    bundleOverride
      ? `using the bundle ${bundleOverride}; applying migrations…`
      : "building the bundle (wrangler deploy --dry-run) and applying migrations to a fresh local D1…",
  );
  const bundleDir = join(runDir, "bundle");
  const bundleFile = bundleOverride ?? join(bundleDir, "index.js");
  await Promise.all([
    bundleOverride
      ? undefined
      : runCommand(process.execPath, [wranglerBin, "deploy", "--dry-run", "--outdir", bundleDir], {
          cwd: root,
          env,
          cpu: allCores,
          logFile: join(runDir, "build.log"),
        }),
    runCommand(
      process.execPath,
      [wranglerBin, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir],
      {
        cwd: root,
        env,
        cpu: allCores,
        logFile: join(runDir, "migrate.log"),
      },
    ),
  ]);

  const server = new PlainWorkerd({
    runDir,
    bundleFile,
    persistDir,
    wranglerConfig,
    vars: { ...wranglerConfig.vars, RATE_LIMITS: "off", JWT_SECRET: secret },
    cpu: serverCpu,
    inspect: profiling,
  });

  // Seeding through the public API.
  await server.start();
  log(`workerd serve ready on ${server.base} (pid ${server.pid}); seeding ${P.users} users and conversations…`);
  const seedStart = Date.now();
  const users = await registerUsers(server.base, P.users);
  const minted = await mintTokens(server.base, users, {
    secret,
    issuer: wranglerConfig.vars.JWT_ISSUER,
    audience: wranglerConfig.vars.JWT_AUDIENCE,
  });
  if (!minted) {
    notes.push("tokens signed by the suite were refused: logged every user in through the API instead");
    await loginUsers(server.base, users);
  }
  const writeConversations = [];
  for (let i = 0; i < 10; i++) {
    const members = [users[(2 * i) % P.users], users[(2 * i + 1) % P.users]];
    writeConversations.push({
      id: await createConversation(server.base, members, `write ${i}`),
      sender: members[0],
      members,
    });
  }
  const group = async (title, n) => {
    const members = users.slice(0, n);
    return { id: await createConversation(server.base, members, title), members };
  };
  const historyConversation = await group("history", 2);
  const fan100 = await group("fan-out 100", Math.min(100, P.users));
  const fan10 = await group("fan-out 10", 10);
  const browser100 = await group("browser-like 100", Math.min(100, P.users));
  const scaleConversation = await group("scale", Math.min(100, P.users));
  const seedApiMs = Date.now() - seedStart;
  await server.stop();

  if (runs("history")) {
    log(`seeding ${P.historyMessages.toLocaleString("en")} history messages with wrangler d1 execute…`);
    const sqlFile = join(runDir, "history.sql");
    writeFileSync(
      sqlFile,
      historySql({ conversationId: historyConversation.id, senderId: users[0].userId, count: P.historyMessages }),
    );
    const started = Date.now();
    await runCommand(
      process.execPath,
      [wranglerBin, "d1", "execute", "DB", "--local", "--persist-to", persistDir, "--file", sqlFile, "--yes"],
      {
        cwd: root,
        env,
        cpu: allCores,
        logFile: join(runDir, "seed-history.log"),
      },
    );
    scenarios.seeding = { apiMs: seedApiMs, historyMs: Date.now() - started, historyMessages: P.historyMessages };
  } else {
    scenarios.seeding = { apiMs: seedApiMs };
  }

  // HTTP scenarios on a fresh server.
  await server.start();
  log(`workerd serve restarted (pid ${server.pid})`);
  await attempt("ceiling", () => ceiling({ server, connections: P.httpConnections, durationS: P.httpS }), server);
  await attempt(
    "write",
    () => write({ server, conversations: writeConversations, connections: P.httpConnections, durationS: P.httpS }),
    server,
  );
  await attempt(
    "history",
    () =>
      history({
        server,
        conversationId: historyConversation.id,
        user: users[0],
        messages: P.historyMessages,
        rate: P.historyRate,
        durationS: P.historyS,
        throughputS: P.historyThroughputS,
      }),
    server,
  );

  // Socket scenarios, each on a fresh server: what one leaves behind (a backlog of inbox forwards,
  // sockets still closing) must not weigh on the next, and scale's memory figures are its own.
  const fresh = async (what) => {
    await server.stop();
    await server.start();
    log(`workerd serve restarted for ${what} (pid ${server.pid})`);
  };
  const socketScenario = async (name, kind, conversation, count, body) => {
    if (!runs(name)) return;
    await fresh(name);
    await attempt(
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
  const steady = (conversation, durationS) => (g) =>
    fanout({ server, conversation, group: g.group, rate: P.fanoutRate, durationS });
  const ladder = (conversation) => (g) =>
    capacity({ server, conversation, group: g.group, ladder: P.capacityLadder, stepS: P.capacityStepS });
  await socketScenario("fanout", "ws", fan100, P.fanoutSockets, steady(fan100, P.fanoutS));
  await socketScenario("browser", "browser", browser100, P.fanoutSockets, steady(browser100, P.browserS));
  await socketScenario("capacity100", "ws", fan100, P.fanoutSockets, ladder(fan100));
  await socketScenario("capacity10", "ws", fan10, 10, ladder(fan10));
  if (runs("scale")) {
    await fresh("scale");
    await attempt(
      "scale",
      () =>
        scale({
          server,
          conversation: scaleConversation,
          count: P.scaleSockets,
          idleS: P.scaleIdleS,
          deadlineMs: P.scaleDeadlineS * 1000,
        }),
      server,
    );
  }
  await server.stop();

  // The HTTP scenarios again under wrangler dev, on the same persisted state (for comparison).
  if (runs("wrangler-dev")) {
    const dev = new WranglerDev({ root, runDir, persistDir, secret, cpu: serverCpu });
    let started = false;
    try {
      await dev.start();
      if (!dev.pid) throw new Error("could not find wrangler dev's workerd processes");
      log(`wrangler dev ready on ${dev.base} (pids ${dev.pid}; workerd ${dev.workerdPids})`);
      started = true;
    } catch (err) {
      log(`wrangler dev FAILED to start: ${err.stack ?? err}`);
      scenarios["wrangler-dev"] = { error: String(err.message ?? err).slice(0, 2000) };
    }
    if (started) {
      await attempt(
        "wrangler-dev",
        async () => {
          // Tokens from wrangler dev's own login, whatever secret it ended up with.
          const senders = writeConversations.map((c) => ({ ...c.sender }));
          await loginUsers(dev.base, senders);
          const conversations = writeConversations.map((c, i) => ({ ...c, sender: senders[i] }));
          const c = await ceiling({ server: dev, connections: P.httpConnections, durationS: P.httpS });
          const w = await write({
            server: dev,
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

  const finished = new Date();
  const results = {
    date: finished.toISOString(),
    mode: quick ? "quick" : "full",
    server: "workerd serve (the wrangler deploy --dry-run bundle; D1 through miniflare's D1DatabaseObject)",
    bundle: bundleOverride ?? "built by this run",
    storage: onDisk ? `disk (${os.tmpdir()})` : "tmpfs (/dev/shm)",
    serverPinnedToCore: serverCpu ?? null,
    loadGeneratorPinnedToCore: generatorPinned ? 1 : null,
    durationS: round((Date.now() - t0) / 1000, 1),
    machine: { ...mach, loadAverageAtEnd: os.loadavg().map((x) => round(x, 2)) },
    versions: vers,
    parameters: { ...P, ciphertextBytes: 256, rateLimits: "off" },
    targets: TARGETS,
    scenarios,
    notes,
  };
  if (profiling) {
    results.profiled = "yes: these figures were taken with the CPU profiler attached";
    results.profiles = profiles;
  }
  results.table = table(results);
  printTable(results);
  printProfiles();
  const outDir = join(root, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, "latest.json");
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), outFile)} (${results.durationS} s in all)`);
  return results;
}

const TARGETS = {
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
};

const fmt = (x, digits = 1) =>
  x === null || x === undefined || Number.isNaN(x)
    ? "–"
    : typeof x === "number"
      ? x.toLocaleString("en", { maximumFractionDigits: digits })
      : String(x);
const lat = (l) => (l ? [l.p50, l.p90, l.p99, l.p999, l.max].map((x) => fmt(x, 1)) : ["–", "–", "–", "–", "–"]);
const verdict = (ok) => (ok === null ? "–" : ok ? "yes" : "NO");

function table(r) {
  const s = r.scenarios;
  const rows = [];
  const add = (scenario, result, latency, errors, dropped, target, ok, context) => {
    const [p50, p90, p99, p999, max] = lat(latency);
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
  const failed = (name, target) =>
    add(name, `ERROR: ${s[name]?.error?.split("\n")[0].slice(0, 60)}`, null, null, null, target, false);

  if (s.ceiling?.error) failed("ceiling", "reference");
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
  if (s.write?.error) failed("write", "≥ 40% of ceiling");
  else if (s.write) {
    const ratio = s.ceiling?.okPerSecond ? s.write.okPerSecond / s.ceiling.okPerSecond : null;
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
  for (const [name, label] of [
    ["fanout", "fan-out"],
    ["browser", "fan-out, browser-like"],
  ]) {
    const f = s[name];
    if (f?.error) failed(name, "p50 ≤ 15, p99 ≤ 50 ms");
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
  for (const key of ["capacity10", "capacity100"]) {
    const c = s[key];
    if (c?.error) failed(key, "≥ 5,000 at p99 ≤ 100 ms");
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
  if (s.scale?.error) failed("scale", "all held, ≤ 1 GiB, ≤ 2 s");
  else if (s.scale) {
    const c = s.scale;
    const ok =
      c.allHeld &&
      c.rssMiB.peak <= TARGETS.scaleRssMiB &&
      c.firstBroadcast.reachedAll &&
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
  if (s.history?.error) failed("history", "deep/first ≤ 1.5");
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
  if (wd?.error) failed("wrangler-dev", "comparison");
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
  return rows;
}

function printTable(r) {
  const cols = [
    ["scenario", "scenario"],
    ["result", "result"],
    ["p50", "p50 ms"],
    ["p90", "p90"],
    ["p99", "p99"],
    ["p999", "p99.9"],
    ["max", "max"],
    ["errors", "errors"],
    ["dropped", "dropped"],
    ["target", "target"],
    ["met", "met"],
    ["others", "others"],
  ];
  const widths = cols.map(([k, h]) => Math.max(h.length, ...r.table.map((row) => String(row[k]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  const out = [
    "",
    `Parley bench (${r.mode}), ${r.date}, server: ${r.server}`,
    `machine: ${r.machine.cpuModel}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB; load avg ${r.machine.loadAverageAtStart.join(" ")} → ${r.machine.loadAverageAtEnd.join(" ")}`,
    `versions: node ${r.versions.node}, wrangler ${r.versions.wrangler}, workerd ${r.versions.workerd}; server core ${r.serverPinnedToCore ?? "any"}, load generator core ${r.loadGeneratorPinnedToCore ?? "any"}; state on ${r.storage}`,
    "latency columns: ms; fan-out/capacity/history from the intended send time (open loop; fan-out: to the frame on the last socket); ceiling/write closed loop",
    "others: CPU cores used by other processes on this machine during the scenario (noise; the server has one core)",
    "",
    line(cols.map(([, h]) => h)),
    line(widths.map((w) => "-".repeat(w))),
    ...r.table.map((row) => line(cols.map(([k]) => row[k]))),
    "",
    ...r.notes.map((n) => `note: ${n}`),
  ];
  console.log(out.join("\n"));
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  log(`bench failed: ${err.stack ?? err}`);
  exitCode = 1;
} finally {
  killAll();
  agent.destroy();
  if (keep || exitCode !== 0) log(`kept ${runDir} (logs, persisted state)`);
  else rmSync(runDir, { recursive: true, force: true });
}
process.exit(exitCode);
