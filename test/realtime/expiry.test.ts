import { runDurableObjectAlarm, runInDurableObject as runIn } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SHARD_ID_STRIDE } from "../../src/db/shards";
import { erasePass, SWEEP_BATCH, sweepBacklog } from "../../src/jobs/expiry";
import { call, createConversation, history, registerUsers, sendMessage, type TestUser } from "../helpers/api";
import { shardD1Of, shardDbOf } from "../helpers/databases";
import { conversationSocket, sleep } from "../helpers/sockets";

const room = (id: number): DurableObjectStub => env.CONVERSATION_ROOM.getByName(String(id));
/** `runInDurableObject` with the room's private methods reachable (and without its deep generic types). */
const runInDurableObject = runIn as unknown as <R>(
  stub: DurableObjectStub,
  fn: (instance: any, state: DurableObjectState) => R | Promise<R>,
) => Promise<R>;
/** The expiry sweep's store over the shard holding `conversationId`. */
const store = (conversationId: number) => ({ db: shardDbOf(conversationId), bucket: env.ATTACHMENTS });

/** Moves every message of a conversation's expiry into the past (as if its TTL had run out). */
const expireAll = (conversationId: number) =>
  shardD1Of(conversationId)
    .prepare(
      "update messages set expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 second') where conversation_id = ?",
    )
    .bind(conversationId)
    .run();

const stored = (conversationId: number) =>
  shardD1Of(conversationId)
    .prepare("select count(*) as n from messages where conversation_id = ? and ciphertext is not null")
    .bind(conversationId)
    .first<{ n: number }>()
    .then((r) => r!.n);

async function ttlConversation(alice: TestUser, bob: TestUser, ttl = 30) {
  const id = await createConversation(alice, bob);
  const res = await call("PUT", `/conversations/${id}/settings`, {
    token: alice.token,
    body: { messageTtlSeconds: ttl },
  });
  expect(res.status).toBe(200);
  return id;
}

/**
 * Copies the conversation's newest message `n` times at once (a backlog, bypassing rate limits), with
 * new ids of its shard (the shard's largest id plus multiples of the stride, as the write path does).
 */
async function backlog(conversationId: number, n: number) {
  const shard = shardD1Of(conversationId);
  await shard
    .prepare(
      `with recursive k(i) as (select 1 union all select i + 1 from k where i < ?)
     insert into messages (id, conversation_id, seq, sender_id, sender_username, sender_device_id, key_epoch, nonce,
       ciphertext, auth_tag, signature, deleted, created_at, expires_at)
     select (select max(id) from messages) + k.i * ${SHARD_ID_STRIDE}, m.conversation_id, m.seq + k.i, m.sender_id, m.sender_username, m.sender_device_id, m.key_epoch, m.nonce,
       m.ciphertext, m.auth_tag, m.signature, 0, m.created_at, m.expires_at
     from k, (select * from messages where conversation_id = ? order by seq desc limit 1) m`,
    )
    .bind(n, conversationId)
    .run();
  await shard
    .prepare(
      "update conversations set last_seq = (select max(seq) from messages where conversation_id = ?) where id = ?",
    )
    .bind(conversationId, conversationId)
    .run();
}

describe("disappearing messages", () => {
  it("reads an expired message as a tombstone everywhere before the sweep, then the sweep erases its bytes", async () => {
    const [alice, bob] = await registerUsers("exp", "exp");
    const id = await ttlConversation(alice, bob);
    const { body: first } = await sendMessage(alice, id);
    const { body: second } = await sendMessage(alice, id);
    await expireAll(id);
    for (const page of [await history(bob, id), await history(bob, id, `after=${first.messageId}`)]) {
      for (const m of page) expect(m).toMatchObject({ deleted: true, ciphertext: null, signature: null });
      expect(page[0].expiresAt).toEqual(expect.any(String));
    }
    expect(await stored(id)).toBe(2); // not erased yet: only hidden
    // A gap fill reads D1 too: a socket that missed both gets tombstones.
    const socket = await conversationSocket(id, bob.token);
    await runInDurableObject(room(id), async (instance: any) => {
      instance.sequencer.reset();
      instance.sequencer.startAt(id, 0);
      await instance.fillGaps();
    });
    await socket.waitFor((f) => f.filter((x) => x.type === "newMessage").length === 2);
    for (const f of socket.frames.filter((x) => x.type === "newMessage")) {
      expect(f.data).toMatchObject({ deleted: true, ciphertext: null });
    }
    socket.ws.close();
    expect(await erasePass(store(id), { now: new Date(), conversationId: id })).toBe(2);
    expect(await stored(id)).toBe(0);
    const row = await shardD1Of(second.messageId)
      .prepare("select ciphertext, nonce, auth_tag, signature, deleted from messages where id = ?")
      .bind(second.messageId)
      .first();
    expect(row).toEqual({ ciphertext: null, nonce: null, auth_tag: null, signature: null, deleted: 1 });
  });

  it("arms the room's alarm at the earliest expiresAt it publishes; the alarm erases what is due", async () => {
    const [alice, bob] = await registerUsers("exp", "exp");
    const id = await ttlConversation(alice, bob);
    const { body } = await sendMessage(alice, id);
    let alarm: number | null = null;
    for (let i = 0; i < 50 && alarm === null; i++) {
      alarm = await runInDurableObject(room(id), (_i, state) => state.storage.getAlarm());
      if (alarm === null) await sleep(20);
    }
    expect(alarm).toBe(Date.parse(body.timestamp) + 30_000);
    await expireAll(id);
    await runInDurableObject(room(id), (_i, state) => {
      state.storage.kv.put("sweep:at", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(room(id))).toBe(true);
    expect(await stored(id)).toBe(0);
    // Nothing left to expire: no alarm for the sweep.
    expect(await runInDurableObject(room(id), (_i, state) => state.storage.kv.get("sweep:at"))).toBeUndefined();
  });

  it("sweeps a large backlog in bounded batches, one pass per alarm, re-armed at once while passes come back full", async () => {
    const [alice, bob] = await registerUsers("exp", "exp");
    const id = await ttlConversation(alice, bob);
    await sendMessage(alice, id);
    await backlog(id, SWEEP_BATCH * 2 + 49);
    await expireAll(id);
    expect(await stored(id)).toBe(SWEEP_BATCH * 2 + 50);
    const passes: number[] = [];
    await runInDurableObject(room(id), (_i, state) => {
      state.storage.kv.put("sweep:at", Date.now() - 1);
    });
    for (let i = 0; i < 5; i++) {
      const erased = await runInDurableObject(room(id), (instance: any) => instance.sweepIfDue());
      passes.push(erased);
      if (erased < SWEEP_BATCH) break;
    }
    expect(passes).toEqual([SWEEP_BATCH, SWEEP_BATCH, 50]);
    expect(await stored(id)).toBe(0);
  });

  it("has a bounded cron backstop over every conversation", async () => {
    const [alice, bob] = await registerUsers("exp", "exp");
    const id = await ttlConversation(alice, bob);
    await sendMessage(alice, id);
    await backlog(id, 24);
    await expireAll(id);
    const erased = await sweepBacklog(store(id), new Date(), 2, 10);
    expect(erased).toBe(20);
    expect(await stored(id)).toBe(5);
    await sweepBacklog(store(id), new Date(), 5, 10);
    expect(await stored(id)).toBe(0);
  });
});
