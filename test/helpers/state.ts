import { env } from "cloudflare:workers";

/**
 * The whole v2 database, for tests that must prove a failed request changed nothing: every table
 * (accounts, devices, sessions, refresh tokens, tickets, conversations, participants, epochs,
 * epoch keys, messages, …), found from the schema so a new table is covered without editing this.
 */
async function tables(): Promise<string[]> {
  const { results } = await env.DB.prepare(
    `select name from sqlite_master where type = 'table'
       and name not like 'sqlite_%' and name not like 'd1_%' and name not like '_cf_%' order by name`,
  ).all<{ name: string }>();
  return results.map((r) => r.name);
}

const hex = (value: unknown) =>
  value instanceof ArrayBuffer || ArrayBuffer.isView(value)
    ? `0x${[...new Uint8Array(value instanceof ArrayBuffer ? value : value.buffer)].map((b) => b.toString(16).padStart(2, "0")).join("")}`
    : value;

/** Every row of every table (BLOBs as hex), in rowid order: equal dumps mean an unchanged database. */
export async function dump(): Promise<Record<string, Record<string, unknown>[]>> {
  const names = await tables();
  const results = await env.DB.batch(names.map((name) => env.DB.prepare(`select * from "${name}" order by rowid`)));
  return Object.fromEntries(
    names.map((name, i) => [
      name,
      (results[i]!.results as Record<string, unknown>[]).map((row) =>
        Object.fromEntries(Object.entries(row).map(([k, v]) => [k, hex(v)])),
      ),
    ]),
  );
}

/** Row counts of every table: cheaper than `dump()` where many requests are checked. */
export async function counts(): Promise<Record<string, number>> {
  const names = await tables();
  const results = await env.DB.batch(names.map((name) => env.DB.prepare(`select count(*) as n from "${name}"`)));
  return Object.fromEntries(names.map((name, i) => [name, (results[i]!.results[0] as { n: number }).n]));
}

/**
 * Conversations whose bookkeeping disagrees with their rows: `lastSeq`/`lastMessageId` vs the
 * messages, no participant, the current epoch without its row (or a later one), keys of an epoch
 * that was never committed, or an epoch marked as needing no rotation whose keys do not cover
 * exactly the active devices of the current participants (the invariant `POST /messages` relies on).
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
  const found: { id: number; rule: string }[] = [];
  for (const [rule, where] of rules) {
    const { results } = await env.DB.prepare(`select c.id from conversations c where ${where}`).all<{ id: number }>();
    for (const { id } of results) found.push({ id, rule });
  }
  return found;
}
