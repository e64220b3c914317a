import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { deleteAttachmentsOfMessages } from "../../src/attachments/lifecycle";
import { attachmentIdsOfMessages, findUnclaimableAttachments } from "../../src/db/attachments";
import { SHARD_ID_STRIDE, shardOfId } from "../../src/db/shards";
import { handleScheduled } from "../../src/jobs/scheduled";
import { addParticipant, createConversation, randomBytes, registerUsers } from "../helpers/api";
import { postWithAttachments } from "../helpers/attachment-messages";
import { download, uploadOk } from "../helpers/attachments";
import { directoryD1, shardD1Of, shardDbOf } from "../helpers/databases";

/** A Drizzle handle on the shard of the conversation (or attachment, or message) `id`. */
const db = (id: number) => shardDbOf(id);

/** Runs the Cron Trigger's handler once; what it logs is captured (and returned), not printed. */
async function cron(): Promise<string[]> {
  const logs = vi.spyOn(console, "log").mockImplementation(() => {});
  try {
    await handleScheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), env);
    return logs.mock.calls.map((args) => args.join(" "));
  } finally {
    logs.mockRestore();
  }
}

const row = (id: number) => shardD1Of(id).prepare("select * from attachments where id = ?").bind(id).first();

describe("linking attachments to messages", () => {
  it("claims in the message's batch; participants then read them, outsiders and later joiners do not", async () => {
    const [alice, bob, carol, eve] = await registerUsers("lnk", "lnk", "lnk", "lnk");
    const conversationId = await createConversation(alice, bob);
    const first = await uploadOk(alice.token, conversationId, randomBytes(100));
    const second = await uploadOk(alice.token, conversationId, randomBytes(200));
    const claim = { attachmentIds: [first, second], conversationId, senderId: alice.userId };
    expect(await findUnclaimableAttachments(db(conversationId), claim)).toEqual([]);

    const messageId = await postWithAttachments(alice, conversationId, [second, first]);
    expect(messageId).not.toBeNull();
    expect((await row(first))?.used_by_message_id).toBe(messageId);
    expect(await attachmentIdsOfMessages(db(conversationId), [messageId!])).toEqual(
      new Map([[messageId, [first, second]]]),
    );
    expect((await download(bob.token, first)).status).toBe(200);
    expect((await download(eve.token, first)).status).toBe(403);

    // Carol joins after the message: she does not see it, nor its attachments.
    expect((await addParticipant(alice, conversationId, carol)).status).toBe(201);
    expect((await download(carol.token, first)).status).toBe(403);

    // Used once: a second message cannot claim them, and writes nothing.
    expect(await findUnclaimableAttachments(db(conversationId), claim)).toEqual([first, second]);
    expect(await postWithAttachments(alice, conversationId, [first, second], 2)).toBeNull();
  });

  it("names the attachments a sender may not use: someone else's, another conversation's, unknown", async () => {
    const [alice, bob] = await registerUsers("lnk", "lnk");
    const here = await createConversation(alice, bob);
    const there = await createConversation(alice, bob);
    const mine = await uploadOk(alice.token, here, randomBytes(10));
    const bobs = await uploadOk(bob.token, here, randomBytes(10));
    const elsewhere = await uploadOk(alice.token, there, randomBytes(10));
    const claim = { attachmentIds: [mine, bobs, elsewhere, 987_654], conversationId: here, senderId: alice.userId };
    expect(await findUnclaimableAttachments(db(here), claim)).toEqual([bobs, elsewhere, 987_654]);
    // The write itself refuses too, so a race between validation and commit cannot slip through.
    expect(await postWithAttachments(alice, here, claim.attachmentIds)).toBeNull();
    expect((await row(mine))?.used_by_message_id).toBeNull();
  });
});

describe("deleting attachments", () => {
  it("deleteAttachmentsOfMessages removes the rows and the R2 objects of those messages only", async () => {
    const [alice, bob] = await registerUsers("del", "del");
    const conversationId = await createConversation(alice, bob);
    const gone = await uploadOk(alice.token, conversationId, randomBytes(10));
    const kept = await uploadOk(alice.token, conversationId, randomBytes(10));
    const messageId = await postWithAttachments(alice, conversationId, [gone]);
    const other = await postWithAttachments(alice, conversationId, [kept]);
    const store = { db: db(conversationId), bucket: env.ATTACHMENTS };
    expect(await deleteAttachmentsOfMessages(store, [messageId!])).toBe(1);
    expect(await row(gone)).toBeNull();
    expect(await env.ATTACHMENTS.head(`attachments/${gone}`)).toBeNull();
    expect(await env.ATTACHMENTS.head(`attachments/${kept}`)).not.toBeNull();
    expect((await download(bob.token, kept)).status).toBe(200);
    expect(await deleteAttachmentsOfMessages(store, [messageId!, other!, 123_456_789])).toBe(1);
  });

  it("the scheduled job deletes attachments unused after 24 hours, at most 100 a run, and keeps used ones", async () => {
    const [alice, bob] = await registerUsers("cron", "cron");
    const conversationId = await createConversation(alice, bob);
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push(await uploadOk(alice.token, conversationId, randomBytes(10)));
    const used = ids[2]!;
    expect(await postWithAttachments(alice, conversationId, [used])).not.toBeNull();
    const dayAgo = new Date(Date.now() - 24 * 3600 * 1000 - 1000).toISOString();
    const shard = shardD1Of(conversationId);
    await shard
      .prepare(`update attachments set created_at = ? where id in (${ids.join(",")})`)
      .bind(dayAgo)
      .run();
    // Pad with 120 old unused rows (no objects) to see the bound, with ids of the conversation's shard.
    const last = (await shard.prepare("select max(id) as n from attachments").first<number>("n"))!;
    const filler = Array.from(
      { length: 120 },
      (_, i) => `(${last + (i + 1) * SHARD_ID_STRIDE}, ${alice.userId}, ${conversationId}, 1, '${dayAgo}')`,
    );
    await shard
      .prepare(
        `insert into attachments (id, uploader_id, conversation_id, size, created_at) values ${filler.join(",")}`,
      )
      .run();
    const fresh = await uploadOk(alice.token, conversationId, randomBytes(10));

    const unusedOld = () =>
      shard
        .prepare("select count(*) as n from attachments where used_by_message_id is null and created_at < ?")
        .bind(new Date(Date.now() - 24 * 3600 * 1000).toISOString())
        .first<number>("n");
    expect(await unusedOld()).toBe(122);
    expect(await cron()).toContain(`cleanup: deleted 100 unused attachments (shard ${shardOfId(conversationId)})`);
    expect(await unusedOld()).toBe(22);
    await cron();
    expect(await unusedOld()).toBe(0);
    expect(await row(ids[0]!)).toBeNull();
    expect(await env.ATTACHMENTS.head(`attachments/${ids[0]}`)).toBeNull();
    expect(await row(used)).not.toBeNull();
    expect(await row(fresh)).not.toBeNull();
  });

  it("the scheduled job deletes what an interrupted deletion left: a tombstone's files, a deleted account's uploads", async () => {
    const [alice, bob] = await registerUsers("aban", "aban");
    const conversationId = await createConversation(alice, bob);
    const used = await uploadOk(alice.token, conversationId, randomBytes(10));
    const unused = await uploadOk(bob.token, conversationId, randomBytes(10));
    const kept = await uploadOk(alice.token, conversationId, randomBytes(10));
    const messageId = await postWithAttachments(alice, conversationId, [used]);
    // As if the deletions had committed and the Worker died before their attachments went (an
    // account's deletion: its shards' batch, which takes it out of every conversation, then the directory's).
    const shard = shardD1Of(conversationId);
    await shard.prepare("update messages set deleted = 1, ciphertext = null where id = ?").bind(messageId).run();
    await shard
      .prepare("delete from participants where conversation_id = ? and user_id = ?")
      .bind(conversationId, bob.userId)
      .run();
    await directoryD1().prepare("delete from users where id = ?").bind(bob.userId).run();
    await cron();
    expect(await row(used)).toBeNull();
    expect(await row(unused)).toBeNull();
    expect(await env.ATTACHMENTS.get(`attachments/${used}`)).toBeNull();
    expect(await env.ATTACHMENTS.get(`attachments/${unused}`)).toBeNull();
    expect(await row(kept), "a live upload of a live account stays").not.toBeNull();
  });
});
