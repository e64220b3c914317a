import { env } from "cloudflare:workers";
import { shardBindings } from "../../src/db/shards";
import { directoryD1, shardD1s } from "./databases";

/**
 * The whole v2 state, for tests that must prove a failed request changed nothing: every table of
 * every database (the directory's accounts, devices, sessions, refresh tokens, tickets, …; each
 * shard's conversations, participants, epochs, epoch keys, messages, account mirror, …), found from
 * the schemas so a new table or a new shard is covered without editing this. Tables are named
 * `<database>.<table>`: `directory.users`, `shard0.messages`.
 */
function databasesByName(): [string, D1Database][] {
  const shards = [...shardBindings(env)].sort(([a], [b]) => a - b);
  return [["directory", directoryD1()], ...shards.map(([index, d1]): [string, D1Database] => [`shard${index}`, d1])];
}

async function tables(d1: D1Database): Promise<string[]> {
  const { results } = await d1
    .prepare(
      `select name from sqlite_master where type = 'table'
         and name not like 'sqlite_%' and name not like 'd1_%' and name not like '_cf_%' order by name`,
    )
    .all<{ name: string }>();
  return results.map((r) => r.name);
}

const hex = (value: unknown) =>
  value instanceof ArrayBuffer || ArrayBuffer.isView(value)
    ? `0x${[...new Uint8Array(value instanceof ArrayBuffer ? value : value.buffer)].map((b) => b.toString(16).padStart(2, "0")).join("")}`
    : value;

/** Runs `query(table)` on every table of every database (one batch per database), keyed `<database>.<table>`. */
async function perTable<T>(query: (table: string) => string, read: (rows: unknown[]) => T): Promise<Record<string, T>> {
  const parts = await Promise.all(
    databasesByName().map(async ([name, d1]) => {
      const names = await tables(d1);
      const results = await d1.batch(names.map((table) => d1.prepare(query(table))));
      return names.map((table, i): [string, T] => [`${name}.${table}`, read(results[i]!.results)]);
    }),
  );
  return Object.fromEntries(parts.flat());
}

/** Every row of every table (BLOBs as hex), in rowid order: equal dumps mean unchanged databases. */
export async function dump(): Promise<Record<string, Record<string, unknown>[]>> {
  return perTable(
    (table) => `select * from "${table}" order by rowid`,
    (rows) =>
      (rows as Record<string, unknown>[]).map((row) =>
        Object.fromEntries(Object.entries(row).map(([k, v]) => [k, hex(v)])),
      ),
  );
}

/** Row counts of every table: cheaper than `dump()` where many requests are checked. */
export async function counts(): Promise<Record<string, number>> {
  return perTable(
    (table) => `select count(*) as n from "${table}"`,
    (rows) => (rows[0] as { n: number }).n,
  );
}

/**
 * Conversations whose bookkeeping disagrees with their rows, in each shard: `lastSeq`/`lastMessageId`
 * vs the messages, no participant, the current epoch without its row (or a later one), keys of an
 * epoch that was never committed, or an epoch marked as needing no rotation whose keys do not cover
 * exactly the active devices of the current participants (the invariant `POST /messages` relies on,
 * read, as it is, from the shard's account mirror). And across databases: a shard's copy of a device
 * still active, or of a session still live, that the directory has revoked, ended or deleted
 * (revocations reach every shard before the directory, so a shard is never behind one).
 */
export async function inconsistencies(): Promise<{ id: number; rule: string }[]> {
  const activeDevices = `select d.id from participants p join devices d on d.user_id = p.user_id and d.status = 'active'
                          where p.conversation_id = c.id`;
  const currentKeys = "select k.device_id from epoch_keys k where k.conversation_id = c.id and k.epoch = c.epoch";
  const rules: [string, string][] = [
    ["lastSeq", "c.last_seq != coalesce((select max(seq) from messages m where m.conversation_id = c.id), 0)"],
    [
      "lastMessageId",
      "coalesce(c.last_message_id, 0) != coalesce((select max(id) from messages m where m.conversation_id = c.id), 0)",
    ],
    ["participants", "not exists (select 1 from participants p where p.conversation_id = c.id)"],
    [
      "epoch",
      `not exists (select 1 from epochs e where e.conversation_id = c.id and e.epoch = c.epoch)
         or exists (select 1 from epochs e where e.conversation_id = c.id and e.epoch > c.epoch)`,
    ],
    [
      "keys",
      "exists (select 1 from epoch_keys k where k.conversation_id = c.id and not exists (select 1 from epochs e where e.conversation_id = c.id and e.epoch = k.epoch))",
    ],
    [
      "coverage",
      `c.rotation_needed = 0 and (exists (${activeDevices} and d.id not in (${currentKeys}))
         or exists (${currentKeys} and k.device_id not in (${activeDevices})))`,
    ],
  ];
  const directory = directoryD1();
  const [activeDevicesThere, liveSessionsThere] = await directory.batch<{ id: number }>([
    directory.prepare("select id from devices where status = 'active'"),
    directory.prepare("select id from sessions where ended_at is null"),
  ]);
  const ids = (rows: { id: number }[]) => JSON.stringify(rows.map((r) => r.id));
  const found: { id: number; rule: string }[] = [];
  for (const shard of shardD1s()) {
    for (const [rule, where] of rules) {
      const { results } = await shard.prepare(`select c.id from conversations c where ${where}`).all<{ id: number }>();
      for (const { id } of results) found.push({ id, rule });
    }
    const [devices, sessions] = await shard.batch<{ id: number }>([
      shard
        .prepare("select id from devices where status = 'active' and id not in (select value from json_each(?))")
        .bind(ids(activeDevicesThere!.results)),
      shard
        .prepare("select id from sessions where ended_at is null and id not in (select value from json_each(?))")
        .bind(ids(liveSessionsThere!.results)),
    ]);
    for (const { id } of devices!.results) found.push({ id, rule: "mirror: device revoked in the directory" });
    for (const { id } of sessions!.results) found.push({ id, rule: "mirror: session ended in the directory" });
  }
  return found;
}
