// The soak's server: `wrangler dev` as `npm run dev` starts it (through the harness), on one port and
// one storage directory for the whole run, killed with SIGKILL and restarted; its output goes to
// test-results/soak-wrangler.log. Also the SQL checks on its local D1 once it is stopped.
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildBundle,
  freePort,
  onCleanup,
  type Proc,
  ROOT,
  readWranglerConfig,
  startWranglerDev,
  stop,
  wrangler,
} from "../../tools/harness/index.ts";
import { type RunContext, SoakError } from "./context.ts";
import { START_TIMEOUT_MS } from "./options.ts";

export const RESULTS_DIR = join(ROOT, "test-results");

export interface SqlRows {
  dupes: Record<string, unknown>[];
  perConversation: { conversation_id: number; n: number; seqs: number; lo: number; hi: number }[];
  convRows: { id: number; last_seq: number; last_message_id: number }[];
  epochKeys: { conversation_id: number; epoch: number; device_id: number }[];
}

export class SoakServer {
  readonly ctx: RunContext;
  readonly log = join(RESULTS_DIR, "soak-wrangler.log");
  readonly persistDir = mkdtempSync(join(tmpdir(), "parley-soak-"));
  readonly bundleDir: string;
  port = 0;
  baseUrl = "";
  up = false;
  proc: Proc | undefined;

  constructor(ctx: RunContext) {
    this.ctx = ctx;
    const { options } = ctx;
    this.bundleDir = options.bundleDir ?? mkdtempSync(join(tmpdir(), "parley-soak-bundle-"));
    const temporary = [...(options.keep ? [] : [this.persistDir]), ...(options.bundleDir ? [] : [this.bundleDir])];
    onCleanup(() => {
      for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
    });
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(this.log, "");
  }

  /** A banner in the server log, so that its output can be matched with the soak's. */
  mark(line: string): void {
    appendFileSync(this.log, `\n===== [soak ${this.ctx.elapsed()}s] ${line} =====\n`);
  }

  /** The Worker bundled once, so that edits to src/ during the run change nothing (unless --bundle-dir). */
  async bundle(): Promise<void> {
    if (!this.ctx.options.bundleDir) {
      const what = "bundle the Worker (wrangler deploy --dry-run)";
      this.mark(`${what}: wrangler deploy --dry-run --outdir ${this.bundleDir}`);
      try {
        await buildBundle(this.bundleDir, { output: { file: this.log } });
      } catch {
        throw new SoakError(`${what} failed; see ${this.log}`);
      }
    }
    if (!existsSync(join(this.bundleDir, "index.js"))) throw new SoakError("the bundle has no index.js");
  }

  async start(why: string): Promise<void> {
    if (!this.port) {
      this.port = await freePort();
      this.baseUrl = `http://127.0.0.1:${this.port}`;
    }
    this.mark(`start wrangler dev (${why}) on port ${this.port}, --persist-to ${this.persistDir}`);
    try {
      const server = await startWranglerDev({
        asDev: true,
        port: this.port,
        persistDir: this.persistDir,
        vars: { RATE_LIMITS: "off", TOKEN_TTL_SECONDS: String(this.ctx.options.tokenTtl) },
        bundleFile: join(this.bundleDir, "index.js"),
        output: { file: this.log },
        timeoutMs: START_TIMEOUT_MS,
        healthIntervalMs: 150,
      });
      this.proc = server.proc;
      this.up = true;
    } catch (err) {
      throw new SoakError(`wrangler dev did not start: ${(err as Error).message.split("\n")[0]}; see ${this.log}`);
    }
  }

  /** SIGKILL to the whole group (wrangler, workerd, esbuild), then a restart on the same port and storage. */
  async crashAndRestart(): Promise<void> {
    const { ctx } = this;
    const downAt = Date.now();
    ctx.log(`SIGKILL to the dev server's process group (pid ${this.proc?.pid}); ${ctx.inFlightPosts} POSTs in flight`);
    this.mark("SIGKILL");
    this.up = false;
    await stop(this.proc, { signal: "SIGKILL" });
    await this.start("restart after SIGKILL");
    ctx.stats.serverRestarts += 1;
    ctx.stats.restartDowntimeMs.push(Date.now() - downAt);
    ctx.stats.restartsAt.push({
      killedAt: Number(((downAt - ctx.started) / 1000).toFixed(1)),
      upAt: Number(ctx.elapsed()),
    });
    ctx.log(`dev server back after ${((Date.now() - downAt) / 1000).toFixed(1)} s`);
  }

  /** A graceful stop (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    this.mark("SIGTERM (end of the soak)");
    await stop(this.proc, { graceMs: 5000 });
    this.up = false;
  }

  /** Duplicates, seq ranges and conversation counters, read from every local shard with the server stopped. */
  async sqlChecks(): Promise<SqlRows> {
    const query = [
      "SELECT conversation_id, sender_id, client_message_id, COUNT(*) AS n FROM messages GROUP BY 1, 2, 3 HAVING n > 1",
      "SELECT conversation_id, COUNT(*) AS n, COUNT(DISTINCT seq) AS seqs, MIN(seq) AS lo, MAX(seq) AS hi FROM messages GROUP BY 1",
      "SELECT id, last_seq, last_message_id FROM conversations",
      "SELECT conversation_id, epoch, device_id FROM epoch_keys",
    ].join("; ");
    const rows: SqlRows = { dupes: [], perConversation: [], convRows: [], epochKeys: [] };
    const shards = readWranglerConfig().d1.filter((d) => d.binding.startsWith("SHARD_"));
    for (const { binding } of shards) {
      const out = join(this.persistDir, `sql-${binding}.json`);
      const args = ["d1", "execute", binding, "--local", "--persist-to", this.persistDir, "--json", "--command", query];
      try {
        await wrangler(args, { output: { file: out, stderr: "ignore" }, timeoutMs: 120_000 });
      } catch {
        throw new SoakError(`wrangler d1 execute failed on ${binding}: ${readFileSync(out, "utf8").slice(0, 500)}`);
      }
      const [dupes, perConversation, convRows, epochKeys] = JSON.parse(readFileSync(out, "utf8")).map(
        (r: { results: unknown }) => r.results,
      );
      rows.dupes.push(...dupes);
      rows.perConversation.push(...perConversation);
      rows.convRows.push(...convRows);
      rows.epochKeys.push(...epochKeys);
    }
    return rows;
  }
}
