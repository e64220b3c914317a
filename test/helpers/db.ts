import { directoryD1, shardD1s } from "./databases";

/**
 * Row counts (users in the directory; conversations, participants and messages summed over every
 * shard) plus the conversations whose bookkeeping disagrees with their rows (asked of each shard).
 */
export async function snapshot() {
  const users = await directoryD1().prepare("select count(*) as n from users").first<number>("n");
  const perShard = await Promise.all(
    shardD1s().map(async (shard) => {
      const counts = await shard.batch([
        shard.prepare("select count(*) as n from conversations"),
        shard.prepare("select count(*) as n from participants"),
        shard.prepare("select count(*) as n from messages"),
      ]);
      const inconsistent = await shard
        .prepare(
          `select c.id from conversations c
            where c.last_seq != coalesce((select max(seq) from messages m where m.conversation_id = c.id), 0)
               or coalesce(c.last_message_id, 0) != coalesce((select max(id) from messages m where m.conversation_id = c.id), 0)
               or not exists (select 1 from participants p where p.conversation_id = c.id)`,
        )
        .all();
      return { counts: counts.map((r) => (r.results[0] as { n: number }).n), inconsistent: inconsistent.results };
    }),
  );
  const sums = [0, 1, 2].map((i) => perShard.reduce((sum, s) => sum + s.counts[i]!, 0));
  return { counts: [users ?? 0, ...sums], inconsistent: perShard.flatMap((s) => s.inconsistent) };
}

/**
 * Users straight into the directory (no password hashing, no real keys), each with one active
 * device: for bounds like 256 participants only. Their devices are listed by `GET /users/{username}`
 * like any, and reach a shard's mirror when they join a conversation there, as any user's do.
 */
export async function insertUsersWithDevices(
  count: number,
  prefix = "bulk",
): Promise<{ username: string; userId: number; deviceId: number }[]> {
  const directory = directoryD1();
  const stamp = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  const names = Array.from({ length: count }, (_, i) => `${prefix}_${stamp}_${i}`.slice(0, 32));
  const now = new Date().toISOString();
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  const user = directory.prepare(
    "insert into users (username, password_hash, password_salt, password_algorithm, password_iterations, account_key, created_at) values (?, ?, ?, 'PBKDF2-SHA256', 100000, ?, ?)",
  );
  const device = directory.prepare(
    "insert into devices (user_id, name, identity_key, signing_key, signature, status, created_at) select id, 'bulk', ?, ?, ?, 'active', ? from users where username = ?",
  );
  await directory.batch(names.map((n) => user.bind(n, random(32), random(16), random(32), now)));
  await directory.batch(names.map((n) => device.bind(random(32), random(32), random(64), now, n)));
  const rows = await directory
    .prepare(
      `select u.username as username, u.id as userId, d.id as deviceId from users u join devices d on d.user_id = u.id
        where u.username in (select value from json_each(?))`,
    )
    .bind(JSON.stringify(names))
    .all<{ username: string; userId: number; deviceId: number }>();
  const byName = new Map(rows.results.map((r) => [r.username, r]));
  return names.map((n) => byName.get(n)!);
}
