import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  addParticipant,
  call,
  createConversation,
  history,
  loginPendingDevice,
  messageBody,
  randomBytes,
  registerUser,
  registerUsers,
  sendMessage,
} from "../helpers/api";
import { bytesToday, messageCount, postWithAttachments } from "../helpers/attachment-messages";
import { download, upload, uploadOk } from "../helpers/attachments";
import { shardD1Of } from "../helpers/databases";
import { conversationSocket } from "../helpers/sockets";

const usedBy = async (id: number) =>
  shardD1Of(id)
    .prepare("select used_by_message_id as m from attachments where id = ?")
    .bind(id)
    .first<number | null>("m");

const BUDGET = Number(env.DAILY_BYTES_PER_USER);
/** messageBody's ciphertext: 64 bytes. */
const CIPHERTEXT_BYTES = 64;

/**
 * Sets the sender's count for today in the shard of `conversationId` (where its messages are charged),
 * as if they had sent that much already.
 */
async function setBytesToday(userId: number, conversationId: number, bytes: number) {
  await shardD1Of(conversationId)
    .prepare(
      "insert into daily_bytes (user_id, day, bytes) values (?, ?, ?) on conflict do update set bytes = excluded.bytes",
    )
    .bind(userId, new Date().toISOString().slice(0, 10), bytes)
    .run();
}

describe("POST /messages with attachments", () => {
  it("links them in the commit; history and newMessage list them ascending, [] when none", async () => {
    const [alice, bob] = await registerUsers("am", "am");
    const conversationId = await createConversation(alice, bob);
    const socket = await conversationSocket(conversationId, bob.token);
    const a = await uploadOk(alice.token, conversationId, randomBytes(10));
    const b = await uploadOk(alice.token, conversationId, randomBytes(20));
    const withFiles = await sendMessage(alice, conversationId, { attachments: [b, a] });
    expect(withFiles.status).toBe(201);
    expect(Object.keys(withFiles.body).sort()).toEqual(["messageId", "seq", "timestamp"]);
    const plain = await sendMessage(alice, conversationId);
    expect(plain.status).toBe(201);

    expect(await usedBy(a)).toBe(withFiles.body.messageId);
    expect(await usedBy(b)).toBe(withFiles.body.messageId);
    const page = (await history(bob, conversationId)).reverse();
    expect(page.map((m) => m.attachments)).toEqual([[a, b], []]);
    await socket.waitFor(() => socket.newMessages().length === 2);
    expect(socket.newMessages().map((m) => m.attachments)).toEqual([[a, b], []]);
    socket.ws.close(1000, "done");
  });

  it("answers 422 naming someone else's, another conversation's, used and unknown ids, and stores nothing", async () => {
    const [alice, bob] = await registerUsers("am", "am");
    const here = await createConversation(alice, bob);
    const there = await createConversation(alice, bob);
    const mine = await uploadOk(alice.token, here, randomBytes(10));
    const bobs = await uploadOk(bob.token, here, randomBytes(10));
    const elsewhere = await uploadOk(alice.token, there, randomBytes(10));
    const used = await uploadOk(alice.token, here, randomBytes(10));
    expect(await postWithAttachments(alice, here, [used])).not.toBeNull();
    const before = { count: await messageCount(here), bytes: await bytesToday(alice.userId) };

    for (const [ids, named] of [
      [[mine, bobs], [bobs]],
      [[elsewhere, mine], [elsewhere]],
      [[mine, used], [used]],
      [[987_654_321], [987_654_321]],
      [
        [bobs, elsewhere, used],
        [bobs, elsewhere, used],
      ],
    ] as const) {
      const res = await sendMessage(alice, here, { attachments: [...ids] });
      expect(res.status).toBe(422);
      expect(res.body.error.details).toEqual([{ path: "attachments", message: expect.any(String) }]);
      const listed = res.body.error.details[0].message.split(": ")[1].split(", ").map(Number);
      expect(listed).toEqual([...named]);
    }
    expect(await usedBy(mine)).toBeNull();
    expect(await messageCount(here)).toBe(before.count);
    expect(await bytesToday(alice.userId)).toBe(before.bytes);
  });

  it("answers 422 for more than 10 attachments or a repeated id (schema), before anything is read", async () => {
    const [alice, bob] = await registerUsers("am", "am");
    const conversationId = await createConversation(alice, bob);
    const ids = Array.from({ length: 11 }, (_, i) => i + 1);
    const tooMany = await sendMessage(alice, conversationId, { attachments: ids });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.error.details[0].path).toBe("attachments");
    const mine = await uploadOk(alice.token, conversationId, randomBytes(10));
    const repeated = await sendMessage(alice, conversationId, { attachments: [mine, mine] });
    expect(repeated.status).toBe(422);
    expect(await sendMessage(alice, conversationId, { attachments: [] })).toMatchObject({ status: 201 });
    expect(await usedBy(mine)).toBeNull();
  });

  it("lets exactly one of two racing messages claim an attachment; the other is 422 and stores nothing", async () => {
    const [alice, bob] = await registerUsers("am", "am");
    const conversationId = await createConversation(alice, bob);
    for (let round = 0; round < 4; round++) {
      const contested = await uploadOk(alice.token, conversationId, randomBytes(10));
      const before = await messageCount(conversationId);
      const results = await Promise.all([
        sendMessage(alice, conversationId, { attachments: [contested] }),
        sendMessage(alice, conversationId, { attachments: [contested] }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([201, 422]);
      const winner = results.find((r) => r.status === 201)!;
      expect(await usedBy(contested)).toBe(winner.body.messageId);
      expect(await messageCount(conversationId)).toBe(before + 1);
    }
  });

  it("answers a retry with its first answer (200) and claims nothing more", async () => {
    const [alice, bob] = await registerUsers("am", "am");
    const conversationId = await createConversation(alice, bob);
    const file = await uploadOk(alice.token, conversationId, randomBytes(10));
    const first = await sendMessage(alice, conversationId, { attachments: [file], clientMessageId: "once" });
    const again = await sendMessage(alice, conversationId, { attachments: [file], clientMessageId: "once" });
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.body).toEqual(first.body);
    expect(await bytesToday(alice.userId)).toBe(10 + CIPHERTEXT_BYTES);
  });
});

describe("POST /messages and the daily byte budget", () => {
  it("charges the ciphertext in the commit, up to the budget exactly; past it 429 with Retry-After, nothing stored", async () => {
    const [alice, bob] = await registerUsers("bud", "bud");
    const conversationId = await createConversation(alice, bob);
    const file = await uploadOk(alice.token, conversationId, randomBytes(10));
    expect(await bytesToday(alice.userId)).toBe(10);
    expect((await sendMessage(alice, conversationId)).status).toBe(201);
    expect(await bytesToday(alice.userId)).toBe(10 + CIPHERTEXT_BYTES);

    await setBytesToday(alice.userId, conversationId, BUDGET - CIPHERTEXT_BYTES);
    expect((await sendMessage(alice, conversationId, { clientMessageId: "last" })).status).toBe(201);
    expect(await bytesToday(alice.userId)).toBe(BUDGET);

    const count = await messageCount(conversationId);
    const res = await call("POST", "/messages", {
      token: alice.token,
      body: messageBody(conversationId, { attachments: [file] }),
    });
    expect(res.status).toBe(429);
    expect((await res.json<any>()).error.code).toBe("rate_limited");
    const retryAfter = Number(res.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(await messageCount(conversationId)).toBe(count);
    expect(await usedBy(file)).toBeNull();
    expect(await bytesToday(alice.userId)).toBe(BUDGET);
    // Idempotency still wins: the retry of a committed message gets its first answer.
    expect((await sendMessage(alice, conversationId, { clientMessageId: "last" })).status).toBe(200);
    // Someone else's budget is their own.
    expect((await sendMessage(bob, conversationId)).status).toBe(201);
  });

  it("lets concurrent messages through only while they fit", async () => {
    const [alice, bob] = await registerUsers("bud", "bud");
    const conversationId = await createConversation(alice, bob);
    await setBytesToday(alice.userId, conversationId, BUDGET - 3 * CIPHERTEXT_BYTES);
    const results = await Promise.all(Array.from({ length: 6 }, () => sendMessage(alice, conversationId)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    expect(results.filter((r) => r.status === 429)).toHaveLength(3);
    expect(await bytesToday(alice.userId)).toBe(BUDGET);
    expect(await messageCount(conversationId)).toBe(3);
  });
});

describe("GET /attachments/{id} in v2", () => {
  it("serves participants who may see the message: not a later joiner (until a later message), not a removed one", async () => {
    const [alice, bob, carol] = await registerUsers("dl", "dl", "dl");
    const conversationId = await createConversation(alice, bob);
    const early = await uploadOk(alice.token, conversationId, randomBytes(10));
    expect((await download(bob.token, early)).status).toBe(403); // unused: its uploader only
    expect(await postWithAttachments(alice, conversationId, [early])).not.toBeNull();
    expect((await download(bob.token, early)).status).toBe(200);

    expect((await addParticipant(alice, conversationId, carol)).status).toBe(201);
    expect((await download(carol.token, early)).status).toBe(403);
    const late = await uploadOk(alice.token, conversationId, randomBytes(10));
    expect(await postWithAttachments(alice, conversationId, [late], 2)).not.toBeNull();
    expect((await download(carol.token, late)).status).toBe(200);
    expect((await download(bob.token, late)).status).toBe(200);

    const removed = await call("DELETE", `/conversations/${conversationId}/participants/${bob.username}`, {
      token: alice.token,
    });
    expect(removed.status).toBe(204);
    expect((await download(bob.token, early)).status).toBe(403);
    expect((await download(bob.token, late)).status).toBe(403);
  });

  it("takes uploads only from participants who may post: a pending device of a participant gets 403", async () => {
    const [alice, bob] = await registerUsers("dl", "dl");
    const conversationId = await createConversation(alice, bob);
    const pending = await loginPendingDevice(alice);
    expect((await upload(pending.token, conversationId, randomBytes(10))).status).toBe(403);
    expect((await upload(alice.token, conversationId, randomBytes(10))).status).toBe(201);
  });

  it("account deletion erases the attachments (rows and R2) and tombstones show attachments: null", async () => {
    const [alice, bob] = await registerUsers("dl", "dl");
    const carol = await registerUser("dl");
    const conversationId = await createConversation(alice, bob, carol);
    const sent = await uploadOk(alice.token, conversationId, randomBytes(10));
    const unused = await uploadOk(alice.token, conversationId, randomBytes(10));
    const bobs = await uploadOk(bob.token, conversationId, randomBytes(10));
    expect(await postWithAttachments(alice, conversationId, [sent])).not.toBeNull();
    expect(await postWithAttachments(bob, conversationId, [bobs])).not.toBeNull();

    const gone = await call("DELETE", "/users/me", { token: alice.token, body: { password: alice.password } });
    expect(gone.status).toBe(204);
    for (const id of [sent, unused]) {
      expect(await shardD1Of(id).prepare("select id from attachments where id = ?").bind(id).first()).toBeNull();
      expect(await env.ATTACHMENTS.head(`attachments/${id}`)).toBeNull();
    }
    expect((await download(carol.token, sent)).status).toBe(403);
    expect((await download(carol.token, bobs)).status).toBe(200);
    const page = (await history(carol, conversationId)).reverse();
    expect(page.map((m) => [m.deleted, m.attachments])).toEqual([
      [true, null],
      [false, [bobs]],
    ]);
  });
});
