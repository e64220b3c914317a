import { beforeAll, describe, expect, it } from "vitest";
import {
  allConversations,
  call,
  createConversation,
  errorOf,
  getConversation,
  history,
  registerUsers,
  sendMessage,
  type TestUser,
} from "../helpers/api";

// POST /messages is rate limited per user (60 in 10 s): posts are spread over several senders.
let alice: TestUser;
let bob: TestUser;
let conversationId: number;
/** The shared conversation's 55 messageIds, oldest first. */
let ids: number[];

/** Posts `count` messages, `senders` taking turns, `concurrency` at a time; returns their ids in posting order. */
async function post(id: number, senders: TestUser[], count: number, concurrency = 10): Promise<number[]> {
  const posted: number[] = [];
  for (let start = 0; start < count; start += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, count - start) }, (_, i) =>
      sendMessage(senders[(start + i) % senders.length]!, id),
    );
    for (const res of await Promise.all(batch)) {
      expect(res.status).toBe(201);
      posted.push(res.body.messageId);
    }
  }
  return posted;
}

const page = (query: string) => history(alice, conversationId, query).then((list) => list.map((m) => m.messageId));
const newestFirst = (list: number[]) => [...list].sort((a, b) => b - a);

beforeAll(async () => {
  [alice, bob] = await registerUsers("alice", "bob");
  conversationId = await createConversation(alice, bob);
  ids = (await post(conversationId, [alice, bob], 55)).sort((a, b) => a - b);
}, 30_000);

describe("GET /conversations/{id}/messages", () => {
  it("answers the newest 50 by default, newest first", async () => {
    expect(await page("")).toEqual(newestFirst(ids).slice(0, 50));
  });

  it("honours limit from 1 to 100", async () => {
    expect(await page("limit=1")).toEqual([ids.at(-1)]);
    expect(await page("limit=55")).toEqual(newestFirst(ids));
    expect(await page("limit=100")).toEqual(newestFirst(ids));
  });

  it("answers with full messages whose seq follows messageId", async () => {
    const messages = await history(bob, conversationId, "limit=100");
    expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: 55 }, (_, i) => 55 - i));
    for (const m of messages) {
      expect(m.conversationId).toBe(conversationId);
      expect([alice.userId, bob.userId]).toContain(m.senderId);
      expect(m.senderUsername).toBe(m.senderId === alice.userId ? alice.username : bob.username);
    }
  });

  it("with before, answers the newest messages older than the cursor, newest first", async () => {
    expect(await page(`before=${ids[10]}&limit=5`)).toEqual([ids[9], ids[8], ids[7], ids[6], ids[5]]);
    expect(await page(`before=${ids[3]}`)).toEqual([ids[2], ids[1], ids[0]]);
    expect(await page(`before=${ids[0]}`)).toEqual([]);
  });

  it("with after, answers the oldest messages newer than the cursor, oldest first", async () => {
    expect(await page(`after=${ids[10]}&limit=5`)).toEqual(ids.slice(11, 16));
    expect(await page(`after=${ids[10]}`)).toEqual(ids.slice(11, 55));
    expect(await page(`after=${ids.at(-1)}`)).toEqual([]);
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=abc", "limit"],
    ["limit=1.5", "limit"],
    ["limit=-1", "limit"],
    ["limit=", "limit"],
    ["limit=1&limit=2", "limit"],
    ["before=0", "before"],
    ["before=-5", "before"],
    ["before=abc", "before"],
    ["before=1.5", "before"],
    ["before=1&before=2", "before"],
    ["after=0", "after"],
    ["after=-1", "after"],
    ["after=1&after=2", "after"],
    ["before=10&after=5", "after"],
  ])("answers 422 for ?%s", async (query, path) => {
    const res = await call("GET", `/conversations/${conversationId}/messages?${query}`, { token: alice.token });
    expect(res.status).toBe(422);
    const error = await errorOf(res);
    expect(error.code).toBe("validation_failed");
    expect(error.details?.map((d) => d.path)).toContain(path);
  });

  it("gives lastMessageId of the conversation as the newest messageId", async () => {
    expect((await getConversation(bob, conversationId)).lastMessageId).toBe(ids.at(-1));
    const listed = await allConversations(alice);
    expect(listed.find((c: any) => c.conversationId === conversationId).lastMessageId).toBe(ids.at(-1));
  });
});

describe("paging", () => {
  it("walks ~120 messages with before, no gap or duplicate while new ones arrive; after then catches up", async () => {
    const senders = await registerUsers("pager", "pager", "pager", "pager");
    const latecomer = senders[0];
    const id = await createConversation(...senders);
    const original = await post(id, senders, 120);
    const reader = senders[1];

    const seen: number[] = [];
    let cursor: number | undefined;
    const arrived: number[] = [];
    for (let pages = 0; pages < 20; pages++) {
      const list = await history(reader, id, `limit=25${cursor ? `&before=${cursor}` : ""}`);
      if (list.length === 0) break;
      seen.push(...list.map((m) => m.messageId));
      cursor = list.at(-1)!.messageId;
      // New messages between pages must not disturb the walk backwards.
      arrived.push(...(await post(id, [latecomer], 2)));
    }
    expect(seen).toEqual(newestFirst(original));
    expect(new Set(seen).size).toBe(120);

    const caughtUp = await history(reader, id, `after=${Math.max(...original)}&limit=100`);
    expect(caughtUp.map((m) => m.messageId)).toEqual([...arrived].sort((a, b) => a - b));
    expect(caughtUp.map((m) => m.seq)).toEqual(Array.from({ length: arrived.length }, (_, i) => 121 + i));
    expect((await getConversation(reader, id)).lastMessageId).toBe(Math.max(...arrived));
  }, 30_000);
});
