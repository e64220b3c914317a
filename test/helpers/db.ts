import { env } from "cloudflare:workers";

/** Row counts of every table plus the conversations whose bookkeeping disagrees with their rows. */
export async function snapshot() {
  const counts = await env.DB.batch([
    env.DB.prepare("select count(*) as n from users"),
    env.DB.prepare("select count(*) as n from conversations"),
    env.DB.prepare("select count(*) as n from participants"),
    env.DB.prepare("select count(*) as n from messages"),
  ]);
  const inconsistent = await env.DB.prepare(
    `select c.id from conversations c
      where c.last_seq != coalesce((select max(seq) from messages m where m.conversation_id = c.id), 0)
         or coalesce(c.last_message_id, 0) != coalesce((select max(id) from messages m where m.conversation_id = c.id), 0)
         or not exists (select 1 from participants p where p.conversation_id = c.id)`,
  ).all();
  return { counts: counts.map((r) => (r.results[0] as { n: number }).n), inconsistent: inconsistent.results };
}
