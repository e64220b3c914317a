import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { streamToBucket, UploadTooLarge, UploadTruncated } from "../../src/attachments/storage";
import { createConversation, errorOf, json, randomBytes, registerUsers } from "../helpers/api";
import { download, largeRandomBytes, upload } from "../helpers/attachments";
import { countInShards, shardD1Of } from "../helpers/databases";

describe("POST /attachments", () => {
  it("stores the exact bytes (past the 256 KiB JSON limit) and only the uploader reads them while unused", async () => {
    const [alice, bob] = await registerUsers("att", "att");
    const conversationId = await createConversation(alice, bob);
    const bytes = largeRandomBytes(3 * 1024 * 1024 + 17);
    const res = await upload(alice.token, conversationId, bytes);
    expect(res.status).toBe(201);
    const { attachmentId, size } = await json(res);
    expect(size).toBe(bytes.byteLength);

    const mine = await download(alice.token, attachmentId);
    expect(mine.status).toBe(200);
    expect(mine.headers.get("Content-Type")).toBe("application/octet-stream");
    expect(mine.headers.get("Content-Length")).toBe(String(bytes.byteLength));
    expect(new Uint8Array(await mine.arrayBuffer())).toEqual(bytes);

    const theirs = await download(bob.token, attachmentId);
    expect(theirs.status).toBe(403);
    const unknown = await download(bob.token, attachmentId + 1000);
    expect(unknown.status).toBe(403);
    expect(await errorOf(unknown)).toEqual(await errorOf(theirs));

    const row = await shardD1Of(attachmentId)
      .prepare("select * from attachments where id = ?")
      .bind(attachmentId)
      .first();
    expect(row).toMatchObject({ uploader_id: alice.userId, conversation_id: conversationId, used_by_message_id: null });
    expect(await env.ATTACHMENTS.head(`attachments/${attachmentId}`)).not.toBeNull();
  });

  it("refuses non-participants with 403 whether the conversation exists or not", async () => {
    const [alice, bob, eve] = await registerUsers("att", "att", "att");
    const conversationId = await createConversation(alice, bob);
    const existing = await upload(eve.token, conversationId, randomBytes(10));
    const missing = await upload(eve.token, 999_999_999, randomBytes(10));
    expect([existing.status, missing.status]).toEqual([403, 403]);
    expect(await errorOf(existing)).toEqual(await errorOf(missing));
  });

  it("answers 422 for an empty body or a missing conversationId, 415 for another media type, 401 without a token", async () => {
    const [alice, bob] = await registerUsers("att", "att");
    const conversationId = await createConversation(alice, bob);
    const empty = await upload(alice.token, conversationId, new Uint8Array(0));
    expect(empty.status).toBe(422);
    const noId = await upload(alice.token, undefined, randomBytes(5));
    expect(noId.status).toBe(422);
    expect((await errorOf(noId)).details?.[0]?.path).toBe("conversationId");
    const wrongType = await upload(alice.token, conversationId, randomBytes(5), { "Content-Type": "image/png" });
    expect(wrongType.status).toBe(415);
    const anonymous = await upload("", conversationId, randomBytes(5));
    expect(anonymous.status).toBe(401);
  });

  it("refuses more than 25 MiB with 413 from Content-Length, before reading the body", async () => {
    const [alice, bob] = await registerUsers("att", "att");
    const conversationId = await createConversation(alice, bob);
    const res = await upload(alice.token, conversationId, randomBytes(16), {
      "Content-Length": String(25 * 1024 * 1024 + 1),
    });
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe("payload_too_large");
    const count = await countInShards("select count(*) as n from attachments where uploader_id = ?", alice.userId);
    expect(count).toBe(0);
  });

  it("streams exactly 25 MiB", async () => {
    const [alice, bob] = await registerUsers("att", "att");
    const conversationId = await createConversation(alice, bob);
    const max = 25 * 1024 * 1024;
    const res = await upload(alice.token, conversationId, new Uint8Array(max).fill(7));
    expect(res.status).toBe(201);

    const rows = await shardD1Of(conversationId)
      .prepare("select size from attachments where uploader_id = ?")
      .bind(alice.userId)
      .all();
    expect(rows.results).toEqual([{ size: max }]);
  });
});

describe("streamToBucket", () => {
  const stream = (...sizes: number[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const size of sizes) controller.enqueue(new Uint8Array(size).fill(1));
        controller.close();
      },
    });

  it("stops a body longer than its declared length and stores nothing", async () => {
    const key = `test/${crypto.randomUUID()}`;
    await expect(streamToBucket(env.ATTACHMENTS, key, stream(600, 600, 600), 1000)).rejects.toBeInstanceOf(
      UploadTooLarge,
    );
    expect(await env.ATTACHMENTS.head(key)).toBeNull();
  });

  it("refuses a body shorter than its declared length", async () => {
    const key = `test/${crypto.randomUUID()}`;
    await expect(streamToBucket(env.ATTACHMENTS, key, stream(300), 1000)).rejects.toBeInstanceOf(UploadTruncated);
    expect(await env.ATTACHMENTS.head(key)).toBeNull();
  });

  it("stores a chunked body of exactly the declared length", async () => {
    const key = `test/${crypto.randomUUID()}`;
    await streamToBucket(env.ATTACHMENTS, key, stream(400, 400, 200), 1000);
    expect((await env.ATTACHMENTS.head(key))?.size).toBe(1000);
  });
});
