// The D1 shards the capacity simulation (`shards`) needs beyond wrangler.toml's, and where the
// conversations it created ended up. Shard bindings are SHARD_0, SHARD_1, … (issue #15).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { ROOT, type WranglerSubset, wrangler, wranglerEnv } from "../../tools/harness/index.ts";

const require = createRequire(import.meta.url);

interface D1Entry {
  binding: string;
  database_name?: string;
  database_id?: string;
  migrations_dir?: string;
}

const SHARD = /^SHARD_(\d+)$/;

/** The shard numbers wrangler.toml binds. */
export function configuredShards(config: WranglerSubset): number[] {
  return config.d1.flatMap((d) => {
    const m = SHARD.exec(d.binding);
    return m ? [Number(m[1])] : [];
  });
}

export interface ExtraShards {
  /** For the server: the added bindings. */
  d1: WranglerSubset["d1"];
  /** wrangler.toml plus the added shards, for wrangler commands on them. */
  configFile: string;
}

/**
 * Binds and migrates SHARD_n for every n < `wanted` that wrangler.toml lacks, each a copy of
 * SHARD_0's entry (same migrations) with its own database, in a copy of wrangler.toml in the run
 * directory; the checkout's file is not touched.
 */
export async function provisionShards(o: {
  wanted: number;
  runDir: string;
  persistDir: string;
  cpu?: string;
}): Promise<ExtraShards> {
  const source = join(ROOT, "wrangler.toml");
  const parsed = (
    require("wrangler") as { unstable_readConfig(a: { config: string }): { d1_databases?: D1Entry[] } }
  ).unstable_readConfig({ config: source });
  const entries = parsed.d1_databases ?? [];
  const template = entries.find((d) => d.binding === "SHARD_0");
  if (!template) throw new Error("wrangler.toml binds no SHARD_0 to copy");
  const have = new Set(entries.flatMap((d) => SHARD.exec(d.binding)?.[1] ?? []).map(Number));
  const missing = Array.from({ length: o.wanted }, (_, n) => n).filter((n) => !have.has(n));
  const added = missing.map((n) => ({
    binding: `SHARD_${n}`,
    id: `5e4d0000-0000-4000-8000-${String(n).padStart(12, "0")}`,
    name: `${template.database_name ?? "parley-shard"}-bench-${n}`,
  }));
  const migrations = resolve(ROOT, template.migrations_dir ?? "migrations");
  const blocks = added.map(
    (a) =>
      `\n[[d1_databases]]\nbinding = "${a.binding}"\ndatabase_name = "${a.name}"\ndatabase_id = "${a.id}"\nmigrations_dir = ${JSON.stringify(migrations)}\n`,
  );
  const configFile = join(o.runDir, "wrangler-shards.toml");
  writeFileSync(configFile, `${readFileSync(source, "utf8")}\n${blocks.join("")}`);
  for (const a of added) {
    await wrangler(
      ["d1", "migrations", "apply", a.binding, "--local", "--persist-to", o.persistDir, "--config", configFile],
      {
        env: wranglerEnv({ NO_COLOR: "1" }),
        cpu: o.cpu,
        output: { file: join(o.runDir, `migrate-${a.binding}.log`) },
      },
    );
  }
  return { d1: added.map(({ binding, id }) => ({ binding, id })), configFile };
}

/**
 * How many of `ids` each shard holds (the server stopped): `wrangler d1 execute` on every shard.
 * Conversation ids are unique across shards (issue #15 keeps them plain integers in the API).
 */
export async function conversationsPerShard(o: {
  shards: number[];
  ids: number[];
  configFile: string;
  runDir: string;
  persistDir: string;
  cpu?: string;
}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const list = o.ids.filter((id) => Number.isInteger(id)).join(",");
  for (const n of o.shards) {
    const out = join(o.runDir, `placement-SHARD_${n}-${Date.now()}.json`);
    const sql = `select count(*) as n from conversations where id in (${list})`;
    const args = ["d1", "execute", `SHARD_${n}`, "--local", "--persist-to", o.persistDir, "--config", o.configFile];
    const failed = await wrangler([...args, "--json", "--command", sql], {
      env: wranglerEnv({ NO_COLOR: "1" }),
      cpu: o.cpu,
      output: { file: out, stderr: "ignore" },
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    const parsed = JSON.parse(readFileSync(out, "utf8") || "null") as
      | { results: { n: number }[] }[]
      | { error?: { text?: string } }
      | null;
    if (failed || !Array.isArray(parsed))
      throw new Error(`SHARD_${n}: ${(parsed as { error?: { text?: string } })?.error?.text ?? failed?.message}`);
    counts[`SHARD_${n}`] = parsed[0]?.results[0]?.n ?? 0;
  }
  return counts;
}
