// The final checks: each conversation's history (walked both ways) against what was acknowledged,
// each member's view against the history, and the database itself through SQL.
import type { Client, Held } from "./client.ts";
import type { Message, RunContext, SentMessage } from "./context.ts";
import { expect } from "./http.ts";
import type { Population } from "./load.ts";
import { PAGE } from "./options.ts";
import type { SqlRows } from "./server.ts";

/** How many seqs of 1..max are absent from a list of seqs. */
function missingSeqs(seqs: number[]): number {
  const set = new Set(seqs);
  let missing = 0;
  for (let s = 1; s <= Math.max(0, ...seqs); s++) if (!set.has(s)) missing += 1;
  return missing;
}

/** The whole history of a conversation, walked back with `before` and forward with `after`. */
async function readHistory(ctx: RunContext, client: Client, conversationId: number): Promise<Message[]> {
  const path = `/conversations/${conversationId}/messages`;
  const back: Message[] = [];
  for (let before = 0; ; ) {
    const qs = before ? `before=${before}&limit=${PAGE}` : `limit=${PAGE}`;
    const page: Message[] = expect(await client.authed("GET", `${path}?${qs}`), 200, "history before");
    back.push(...page);
    if (page.length < PAGE) break;
    before = page.at(-1)!.messageId;
  }
  back.reverse();
  const forward = back.slice(0, 1);
  for (let after = back[0]?.messageId; after !== undefined; ) {
    const page: Message[] = expect(
      await client.authed("GET", `${path}?after=${after}&limit=${PAGE}`),
      200,
      "history after",
    );
    forward.push(...page);
    if (page.length < PAGE) break;
    after = page.at(-1)!.messageId;
  }
  const ids = (list: Message[]) => list.map((m) => m.messageId).join(",");
  if (ids(back) !== ids(forward)) {
    ctx.anomaly("pagingDisagrees", { conversationId, before: back.length, after: forward.length });
  }
  return back;
}

export interface Verdict {
  lost: number;
  duplicates: number;
  gaps: number;
  perConversation: { conversationId: number; members: number[]; messages: number; lastSeq: number }[];
}

/** Every acknowledged message in the database once, seq 1..n, and every member holding exactly that. */
export async function verifyConversations(ctx: RunContext, population: Population): Promise<Verdict> {
  const acked = [...ctx.sentMessages.values()].filter((r) => r.ack);
  const verdict: Verdict = { lost: 0, duplicates: 0, gaps: 0, perConversation: [] };
  for (let k = 0; k < population.conversationIds.length; k++) {
    const id = population.conversationIds[k]!;
    const members = population.members[k]!;
    const history = await readHistory(ctx, [...members][0]!, id);
    const ackedHere = acked.filter((r) => r.conversationId === id);
    checkDatabase(ctx, verdict, id, history, ackedHere);
    if (ctx.removal?.conversationId === id) checkRotation(ctx, history);
    for (const client of members) checkMember(ctx, verdict, client, id, history, ackedHere);
    verdict.perConversation.push({
      conversationId: id,
      members: [...members].map((c) => c.index),
      messages: history.length,
      lastSeq: history.at(-1)?.seq ?? 0,
    });
  }
  return verdict;
}

/** The database, as the history API shows it. */
function checkDatabase(ctx: RunContext, v: Verdict, id: number, history: Message[], ackedHere: SentMessage[]) {
  const seqs = history.map((m) => m.seq);
  const historyGaps = missingSeqs(seqs);
  if (historyGaps)
    ctx.anomaly("historyGap", { conversationId: id, seqs: seqs.length, firstBad: seqs.find((s, i) => s !== i + 1) });
  v.gaps += historyGaps;
  const byCmid = new Map<string, Message>();
  for (const m of history) {
    const key = `${m.conversationId}/${m.senderId}/${m.clientMessageId}`;
    if (byCmid.has(key)) {
      v.duplicates += 1;
      ctx.anomaly("duplicateInDatabase", {
        conversationId: id,
        clientMessageId: m.clientMessageId,
        messageIds: [byCmid.get(key)!.messageId, m.messageId],
      });
    } else byCmid.set(key, m);
    const sent = ctx.sentMessages.get(key);
    if (!sent)
      ctx.anomaly("unknownMessage", { conversationId: id, messageId: m.messageId, clientMessageId: m.clientMessageId });
    else if (!sent.ack)
      ctx.anomaly("storedButNeverAcknowledged", { conversationId: id, clientMessageId: m.clientMessageId });
  }
  const historyIds = new Set(history.map((m) => m.messageId));
  for (const r of ackedHere) {
    const stored = byCmid.get(r.key);
    if (!stored || !historyIds.has(r.ack!.messageId)) {
      v.lost += 1;
      ctx.anomaly("lostFromDatabase", { conversationId: id, clientMessageId: r.body.clientMessageId, ack: r.ack });
    } else if (stored.messageId !== r.ack!.messageId || stored.seq !== r.ack!.seq) {
      v.duplicates += 1;
      ctx.anomaly("ackDiffersFromStored", {
        clientMessageId: r.body.clientMessageId,
        ack: r.ack,
        stored: { messageId: stored.messageId, seq: stored.seq },
      });
    }
  }
}

/** Each member: every acknowledged message once, seq 1..last with no gap, the same set as the database. */
function checkMember(
  ctx: RunContext,
  v: Verdict,
  client: Client,
  id: number,
  history: Message[],
  ackedHere: SentMessage[],
) {
  const conv = client.convs.get(id)!;
  if (conv.removed) {
    checkRemovedMember(ctx, v, client, id, history);
    return;
  }
  const held = [...conv.held.values()].sort((a, b) => a.seq - b.seq);
  const clientGaps = missingSeqs(held.map((m) => m.seq));
  if (clientGaps)
    ctx.anomaly("clientGap", {
      client: client.index,
      conversationId: id,
      held: held.length,
      contiguous: conv.contiguousSeq,
    });
  v.gaps += clientGaps;
  if (held.length !== history.length) {
    ctx.anomaly("clientHistoryMismatch", {
      client: client.index,
      conversationId: id,
      held: held.length,
      history: history.length,
    });
  }
  const seen = new Set<string>();
  for (const m of held) {
    const key = `${m.senderId}/${m.clientMessageId}`;
    if (seen.has(key)) {
      v.duplicates += 1;
      ctx.anomaly("clientHoldsTwice", { client: client.index, conversationId: id, clientMessageId: m.clientMessageId });
    }
    seen.add(key);
  }
  for (const r of ackedHere) {
    if (!conv.held.has(r.ack!.messageId)) {
      v.lost += 1;
      ctx.anomaly("lostForClient", {
        client: client.index,
        conversationId: id,
        clientMessageId: r.body.clientMessageId,
        ack: r.ack,
      });
    }
  }
}

/**
 * The removed member: each message it holds once, as stored, none after its removal, and everything
 * up to its last catch-up before the removal (what came between may be missing: it can no longer
 * catch up).
 */
function checkRemovedMember(ctx: RunContext, v: Verdict, client: Client, id: number, history: Message[]) {
  const { removed, held } = client.convs.get(id)! as Required<Pick<Held, "removed">> & Held;
  const stored = new Map(history.map((m) => [m.messageId, m]));
  const seqs = [...held.values()].map((m) => m.seq);
  for (let seq = 1; seq <= removed.caughtUpTo; seq++) {
    if (!seqs.includes(seq)) {
      v.gaps += 1;
      ctx.anomaly("removedMemberGap", { client: client.index, conversationId: id, seq });
    }
  }
  for (const m of held.values()) {
    if (m.seq > removed.seqAfter)
      ctx.anomaly("removedMemberGotLater", { client: client.index, seq: m.seq, seqAfter: removed.seqAfter });
    if (stored.get(m.messageId)?.seq !== m.seq)
      ctx.anomaly("removedMemberHoldsUnknown", { client: client.index, messageId: m.messageId, seq: m.seq });
  }
}

/** After the removal, every message committed later went under a newer epoch than the one the removed member held. */
function checkRotation(ctx: RunContext, history: Message[]) {
  const removal = ctx.removal!;
  const later = history.filter((m) => m.seq > removal.seqAfter);
  const stale = later.filter((m) => m.keyEpoch <= removal.epochAtRemoval);
  if (stale.length)
    ctx.anomaly("sentUnderOldEpochAfterRemoval", { count: stale.length, seqs: stale.slice(0, 5).map((m) => m.seq) });
  removal.messagesAfter = later.length;
  removal.epochsAfter = [...new Set(later.map((m) => m.keyEpoch))];
}

/** The same rows the history API showed, seen directly: failures of their own (not added to the counts). */
export async function sqlChecks(ctx: RunContext, verdict: Verdict): Promise<SqlRows | null> {
  try {
    const sql = await ctx.server.sqlChecks();
    if (sql.dupes.length) ctx.anomaly("duplicateClientMessageIdInSql", { rows: sql.dupes.slice(0, 5) });
    for (const row of sql.perConversation) {
      if (row.n !== row.seqs || row.lo !== 1 || row.hi !== row.n) ctx.anomaly("sqlSeqNot1ToN", row);
      const conv = sql.convRows.find((c) => c.id === row.conversation_id);
      if (!conv || conv.last_seq !== row.hi) ctx.anomaly("sqlLastSeqMismatch", { ...row, lastSeq: conv?.last_seq });
    }
    const sqlTotal = sql.perConversation.reduce((n, r) => n + r.n, 0);
    const apiTotal = verdict.perConversation.reduce((n, c) => n + c.messages, 0);
    if (sqlTotal !== apiTotal) ctx.anomaly("sqlCountMismatch", { sql: sqlTotal, api: apiTotal });
    const removal = ctx.removal;
    if (removal) {
      // No epoch after the removal was wrapped for the removed device.
      const keyed = sql.epochKeys.filter(
        (k) =>
          k.conversation_id === removal.conversationId &&
          k.epoch > removal.epochAtRemoval &&
          k.device_id === removal.deviceId,
      );
      if (keyed.length) ctx.anomaly("removedDeviceStillKeyed", { epochs: keyed.map((k) => k.epoch) });
    }
    return sql;
  } catch (err) {
    ctx.anomaly("sqlCheckFailed", { error: String((err as Error)?.message ?? err) });
    return null;
  }
}

// (second201, retryAnsweredDifferently and twoMessagesOneSeq are counted as duplicates below.)
const COUNTS_AS_FAILURE = new Set([
  "retryNot200",
  "refused",
  "badAnswer",
  "messageChangedSeq",
  "clientHistoryMismatch",
  "bytesChanged",
  "foreignMessage",
  "foreignConversation",
  "socketOrder",
  "notJson",
  "unknownMessage",
  "storedButNeverAcknowledged",
  "pagingDisagrees",
  "duplicateClientMessageIdInSql",
  "sqlSeqNot1ToN",
  "sqlLastSeqMismatch",
  "sqlCountMismatch",
  "sqlCheckFailed",
  "catchUpFailed",
  "unexpectedRemoval",
  "removedMemberNotCutOff",
  "removedMemberGotLater",
  "removedMemberHoldsUnknown",
  "sentUnderOldEpochAfterRemoval",
  "removedDeviceStillKeyed",
]);

/** The run's failures, in words (none: it passed); adds the duplicate-like anomalies to `verdict`. */
export function failures(ctx: RunContext, verdict: Verdict, unacknowledged: number): string[] {
  const { stats, anomalies } = ctx;
  const otherAnomalies = anomalies.filter((a) => COUNTS_AS_FAILURE.has(a.kind));
  verdict.duplicates += anomalies.filter((a) =>
    ["second201", "retryAnsweredDifferently", "twoMessagesOneSeq"].includes(a.kind),
  ).length;
  const { lost, duplicates, gaps } = verdict;
  const out: string[] = [];
  if (lost) out.push(`${lost} acknowledged message(s) lost`);
  if (duplicates) out.push(`${duplicates} duplicate(s)`);
  if (gaps) out.push(`${gaps} gap(s)`);
  if (unacknowledged) out.push(`${unacknowledged} message(s) never acknowledged`);
  if (stats.serverRestarts < 1) out.push("no server restart happened");
  if (stats.sent === 0 || stats.acknowledged === 0) out.push("nothing was sent");
  if (stats.receivedViaSocket === 0) out.push("no message arrived over a socket");
  if (ctx.options.clients >= 3 && !ctx.removal) out.push("no removal happened");
  if (ctx.removal && (ctx.removal.messagesAfter ?? 0) > 0 && stats.rotations === 0)
    out.push("messages followed the removal but no client rotated");
  if (otherAnomalies.length)
    out.push(
      `${otherAnomalies.length} other anomalie(s): ${[...new Set(otherAnomalies.map((a) => a.kind))].join(", ")}`,
    );
  return out;
}
