// A client's sending: messages at random intervals, each POSTed until answered with the same
// clientMessageId, sometimes raced, retried after the answer, or its answer thrown away on purpose.
// Each attempt goes under the epoch the client last learnt; a 409 makes it rotate (rotation
// required) or learn the current epoch, then the same message goes again.
import { randomSignature } from "../../tools/wire/index.ts";
import { b64, type Client } from "./client.ts";
import { type SentBody, type SentMessage, sleep } from "./context.ts";
import { type ApiResponse, NetworkError, request } from "./http.ts";
import { REQUEST_TIMEOUT_MS } from "./options.ts";

type Why = "first" | "concurrent" | "afterAck";

export async function sendLoop(client: Client, loadEndsAt: number): Promise<void> {
  const { ctx } = client;
  const { intervalMs } = ctx.options;
  while (Date.now() < loadEndsAt) {
    await sleep(ctx.between(intervalMs / 2, (intervalMs * 3) / 2));
    if (Date.now() >= loadEndsAt || ctx.fatalError) break;
    while (client.pending.size >= 3) await Promise.race(client.pending); // at most 3 of my messages in flight
    const convs = [...client.convs.values()].filter((c) => !c.leaving && !c.removed);
    if (convs.length === 0) continue; // removed from its only conversation
    const conv = ctx.pick(convs);
    const clientMessageId = `${client.username}#${++client.counter}`;
    const body: SentBody = {
      conversationId: conv.id,
      keyEpoch: conv.epoch,
      nonce: b64(ctx.between(12, 24)),
      ciphertext: b64(ctx.between(1, 700)),
      authTag: b64(16),
      signature: randomSignature(),
      clientMessageId,
    };
    if (ctx.chance(0.3)) body.associatedData = b64(ctx.between(0, 64));
    const record: SentMessage = {
      key: `${conv.id}/${client.userId}/${clientMessageId}`,
      client,
      conversationId: conv.id,
      body,
      ack: null,
      answers201: 0,
    };
    ctx.sentMessages.set(record.key, record);
    ctx.stats.sent += 1;
    const task = sendOne(client, record)
      .catch(ctx.fatal)
      .finally(() => {
        record.settled = true;
      });
    client.pending.add(task);
    task.finally(() => client.pending.delete(task));
    if (ctx.chance(0.4)) await task; // sometimes wait for the answer, sometimes keep going
  }
  await Promise.all(client.pending);
}

async function sendOne(client: Client, record: SentMessage): Promise<void> {
  const { ctx } = client;
  const posts = [post(client, record, "first")];
  record.raced = ctx.chance(0.1);
  if (record.raced) {
    // The same message twice (or three times) at once, as a client retrying too eagerly would.
    for (let i = ctx.between(1, 2); i > 0; i--) {
      ctx.stats.retriedConcurrently += 1;
      posts.push(sleep(ctx.between(0, 15)).then(() => post(client, record, "concurrent")));
    }
  }
  await Promise.all(posts);
  if (ctx.chance(0.1)) {
    ctx.stats.retriedAfterAck += 1;
    await sleep(ctx.between(0, 300));
    await post(client, record, "afterAck");
  }
}

/** POSTs until an answer (201 or 200) arrives, keeping the same clientMessageId throughout. */
async function post(client: Client, record: SentMessage, why: Why): Promise<void> {
  const { ctx } = client;
  const { stats } = ctx;
  for (let attempt = 0; ; attempt++) {
    ctx.checkDeadline();
    stats.postAttempts += 1;
    if (attempt > 0 || why !== "first") stats.retried += 1;
    if (attempt > 0) stats.retriedAfterError += 1;
    const token = client.token;
    const conv = client.convs.get(record.conversationId)!;
    record.body.keyEpoch = conv.epoch;
    // Now and then, give up on the answer a few ms in: the request may or may not have committed.
    const discard = ctx.chance(0.04);
    let res: ApiResponse;
    ctx.inFlightPosts += 1;
    try {
      res = await request(ctx, "POST", "/messages", {
        token,
        body: record.body,
        timeoutMs: discard ? ctx.between(1, 40) : REQUEST_TIMEOUT_MS,
      });
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      if (discard) stats.answersDiscarded += 1;
      else stats.networkErrors += 1;
      await sleep(ctx.server.up ? ctx.backoff(attempt) : ctx.between(100, 400));
      continue;
    } finally {
      ctx.inFlightPosts -= 1;
    }
    if (res.status === 201 || res.status === 200) {
      acknowledged(client, record, res, why);
      return;
    }
    if (res.status === 401) {
      stats.status401 += 1;
      await client.renew(token);
      continue;
    }
    if (res.status === 409) {
      stats.status409 += 1;
      await client.resolveConflict(conv, res.body);
      continue;
    }
    if (res.status === 429) {
      stats.status429 += 1;
      await sleep(1000 * Number(res.headers.get("Retry-After") ?? 1));
      continue;
    }
    if (res.status >= 500) {
      stats.status5xx += 1;
      await sleep(ctx.backoff(attempt));
      continue;
    }
    ctx.anomaly("refused", {
      client: client.index,
      clientMessageId: record.body.clientMessageId,
      status: res.status,
      body: res.body,
    });
    return;
  }
}

function acknowledged(client: Client, record: SentMessage, res: ApiResponse, why: Why): void {
  const { ctx } = client;
  const { stats } = ctx;
  const { messageId, seq, timestamp } = res.body ?? {};
  if (!Number.isInteger(messageId) || !Number.isInteger(seq) || typeof timestamp !== "string") {
    ctx.anomaly("badAnswer", { status: res.status, body: res.body });
    return;
  }
  if (res.status === 201) {
    stats.answers201 += 1;
    record.answers201 += 1;
    // Two 201s for one clientMessageId: the server stored (or at least announced) it twice.
    if (record.answers201 > 1)
      ctx.anomaly("second201", { clientMessageId: record.body.clientMessageId, messageId, why });
  } else {
    stats.answers200 += 1;
    if (!record.ack && why === "first" && !record.raced) stats.lostAnswersRecovered += 1;
  }
  if (why === "afterAck" && res.status !== 200)
    ctx.anomaly("retryNot200", { clientMessageId: record.body.clientMessageId, status: res.status });
  if (!record.ack) {
    record.ack = { messageId, seq, timestamp };
    stats.acknowledged += 1;
  } else if (record.ack.messageId !== messageId || record.ack.seq !== seq || record.ack.timestamp !== timestamp) {
    ctx.anomaly("retryAnsweredDifferently", {
      clientMessageId: record.body.clientMessageId,
      first: record.ack,
      // biome-ignore lint/suspicious/noThenProperty: a field of the anomaly report, not a thenable
      then: { messageId, seq, timestamp },
      why,
    });
  }
}
