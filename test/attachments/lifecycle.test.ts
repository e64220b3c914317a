import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { deleteAttachmentsOfMessages } from "../../src/attachments/lifecycle";
import {
  type AttachmentClaim,
  attachmentIdsOfMessages,
  attachmentsClaimable,
  claimAttachments,
  findUnclaimableAttachments,
} from "../../src/db/attachments";
import { createDb } from "../../src/db/client";
import { conversations, messages } from "../../src/db/schema";
import { handleScheduled } from "../../src/jobs/scheduled";
import { b64, call, createConversation, randomBytes, registerUsers } from "../helpers/api";
import { download, uploadOk } from "../helpers/attachments";

const db = () => createDb(env.DB);

/**
 * A message write shaped like POST /messages' batch, with the two touch points a merge adds: the
 * INSERT runs only if every attachment is claimable, and the claim sits between it and the UPDATE.
 */
async function postWithAttachments(claim: AttachmentClaim): Promise<number | null> {
  const d = db();
  const { conversationId, senderId } = claim;
  const [inserted] = await d.batch([
    d
      .insert(messages)
      .select(
        d
          .select({
            id: sql<null>`null`.as("id"),
            conversationId: conversations.id,
            seq: sql<number>`${conversations.lastSeq} + 1`.as("seq"),
            senderId: sql<number>`${senderId}`.as("sender_id"),
            nonce: sql<Uint8Array>`${randomBytes(12)}`.as("nonce"),
            ciphertext: sql<Uint8Array>`${randomBytes(16)}`.as("ciphertext"),
            authTag: sql<Uint8Array>`${randomBytes(16)}`.as("auth_tag"),
            associatedData: sql<null>`null`.as("associated_data"),
            clientMessageId: sql<null>`null`.as("client_message_id"),
            createdAt: sql<string>`${new Date().toISOString()}`.as("created_at"),
          })
          .from(conversations)
          .where(and(eq(conversations.id, conversationId), attachmentsClaimable(claim))),
      )
      .returning({ id: messages.id }),
    claimAttachments(d, claim),
    d
      .update(conversations)
      .set({ lastSeq: sql`${conversations.lastSeq} + 1` })
      .where(
        and(
          eq(conversations.id, conversationId),
          sql`${conversations.lastSeq} < (select max(${messages.seq}) from ${messages} where ${messages.conversationId} = ${conversationId})`,
        ),
      ),
  ]);
  return inserted[0]?.id ?? null;
}

const row = (id: number) => env.DB.prepare("select * from attachments where id = ?").bind(id).first();

describe("linking attachments to messages", () => {
  it("claims in the message's batch; participants then read them, outsiders and later joiners do not", async () => {
    const [alice, bob, carol, eve] = await registerUsers("lnk", "lnk", "lnk", "lnk");
    const conversationId = await createConversation(alice, bob);
    const first = await uploadOk(alice.token, conversationId, randomBytes(100));
    const second = await uploadOk(alice.token, conversationId, randomBytes(200));
    const claim = { attachmentIds: [first, second], conversationId, senderId: alice.userId };
    expect(await findUnclaimableAttachments(db(), claim)).toEqual([]);

    const messageId = await postWithAttachments(claim);
    expect(messageId).not.toBeNull();
    expect((await row(first))?.used_by_message_id).toBe(messageId);
    expect(await attachmentIdsOfMessages(db(), [messageId!])).toEqual(new Map([[messageId, [first, second]]]));
    expect((await download(bob.token, first)).status).toBe(200);
    expect((await download(eve.token, first)).status).toBe(403);

    // Carol joins after the message: she does not see it, nor its attachments.
    const add = await call("POST", `/conversations/${conversationId}/participants`, {
      token: alice.token,
      body: { username: carol.username, encryptedKey: b64(randomBytes(48)) },
    });
    expect(add.status).toBe(201);
    expect((await download(carol.token, first)).status).toBe(403);

    // Used once: a second message cannot claim them, and writes nothing.
    expect(await findUnclaimableAttachments(db(), claim)).toEqual([first, second]);
    expect(await postWithAttachments(claim)).toBeNull();
  });

  it("names the attachments a sender may not use: someone else's, another conversation's, unknown", async () => {
    const [alice, bob] = await registerUsers("lnk", "lnk");
    const here = await createConversation(alice, bob);
    const there = await createConversation(alice, bob);
    const mine = await uploadOk(alice.token, here, randomBytes(10));
    const bobs = await uploadOk(bob.token, here, randomBytes(10));
    const elsewhere = await uploadOk(alice.token, there, randomBytes(10));
    const claim = { attachmentIds: [mine, bobs, elsewhere, 987_654], conversationId: here, senderId: alice.userId };
    expect(await findUnclaimableAttachments(db(), claim)).toEqual([bobs, elsewhere, 987_654]);
    // The write itself refuses too, so a race between validation and commit cannot slip through.
    expect(await postWithAttachments(claim)).toBeNull();
    expect((await row(mine))?.used_by_message_id).toBeNull();
  });
});

describe("deleting attachments", () => {
  it("deleteAttachmentsOfMessages removes the rows and the R2 objects of those messages only", async () => {
    const [alice, bob] = await registerUsers("del", "del");
    const conversationId = await createConversation(alice, bob);
    const gone = await uploadOk(alice.token, conversationId, randomBytes(10));
    const kept = await uploadOk(alice.token, conversationId, randomBytes(10));
    const messageId = await postWithAttachments({ attachmentIds: [gone], conversationId, senderId: alice.userId });
    const other = await postWithAttachments({ attachmentIds: [kept], conversationId, senderId: alice.userId });
    const store = { db: db(), bucket: env.ATTACHMENTS };
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
    await postWithAttachments({ attachmentIds: [used], conversationId, senderId: alice.userId });
    const dayAgo = new Date(Date.now() - 24 * 3600 * 1000 - 1000).toISOString();
    await env.DB.prepare(`update attachments set created_at = ? where id in (${ids.join(",")})`)
      .bind(dayAgo)
      .run();
    // Pad with 120 old unused rows (no objects) to see the bound.
    const filler = Array.from({ length: 120 }, () => `(${alice.userId}, ${conversationId}, 1, '${dayAgo}')`);
    await env.DB.prepare(
      `insert into attachments (uploader_id, conversation_id, size, created_at) values ${filler.join(",")}`,
    ).run();
    const fresh = await uploadOk(alice.token, conversationId, randomBytes(10));

    const unusedOld = () =>
      env.DB.prepare("select count(*) as n from attachments where used_by_message_id is null and created_at < ?")
        .bind(new Date(Date.now() - 24 * 3600 * 1000).toISOString())
        .first<number>("n");
    expect(await unusedOld()).toBe(122);
    await handleScheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), env);
    expect(await unusedOld()).toBe(22);
    await handleScheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), env);
    expect(await unusedOld()).toBe(0);
    expect(await row(ids[0]!)).toBeNull();
    expect(await env.ATTACHMENTS.head(`attachments/${ids[0]}`)).toBeNull();
    expect(await row(used)).not.toBeNull();
    expect(await row(fresh)).not.toBeNull();
  });
});
