import { afterEach, describe, expect, it } from "vitest";
import { accept, createConversation, createInvitation, registerUsers, sendMessage } from "../helpers/api";
import { directoryD1, shardD1Of, shardD1s } from "../helpers/databases";
import { conversationSocket, inboxSocket, sleep, type TestSocket } from "../helpers/sockets";

const typingOf = (s: TestSocket) => s.frames.filter((f) => f?.type === "typing");
const errorsOf = (s: TestSocket) => s.frames.filter((f) => f?.type === "error");
const typing = (conversationId?: number) =>
  JSON.stringify(conversationId === undefined ? { type: "typing" } : { type: "typing", conversationId });

/**
 * Counts every statement sent to D1 while `run` runs, in every database (the directory and each
 * shard), requests' sessions included. The binding objects themselves are patched (and restored):
 * the Worker and the objects share them in this runtime, and they keep their database handles per
 * environment (src/db/shards.ts), so a replaced binding would not be seen.
 */
async function countD1(run: () => Promise<void>): Promise<number> {
  let count = 0;
  type Handle = Pick<D1Database, "prepare" | "batch">;
  const counted = <T extends Handle>(handle: T): T =>
    new Proxy(handle, {
      get(target, prop) {
        if (prop === "prepare") {
          return (query: string) => {
            count += 1;
            return target.prepare(query);
          };
        }
        if (prop === "batch") {
          return (statements: D1PreparedStatement[]) => {
            count += statements.length;
            return target.batch(statements);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  const bindings = [directoryD1(), ...shardD1s()];
  const patched = bindings.map((d1) => {
    const real = { prepare: d1.prepare, batch: d1.batch, withSession: d1.withSession };
    const own = counted({ prepare: real.prepare.bind(d1), batch: real.batch.bind(d1) });
    Object.assign(d1, {
      prepare: own.prepare,
      batch: own.batch,
      withSession: (...args: Parameters<D1Database["withSession"]>) => counted(real.withSession.apply(d1, args)),
    });
    return d1;
  });
  try {
    await run();
  } finally {
    for (const d1 of patched) {
      for (const method of ["prepare", "batch", "withSession"])
        delete (d1 as unknown as Record<string, unknown>)[method];
    }
  }
  return count;
}

const open: TestSocket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.ws.close();
});
const track = (s: TestSocket) => {
  open.push(s);
  return s;
};

describe("typing", () => {
  it("relays a conversation socket's typing to the other participants' sockets (room and inbox), not back to the sender", async () => {
    const [alice, bob] = await registerUsers("typ", "typ");
    const id = await createConversation(alice, bob);
    // The room learns which inboxes are connected from the last publish.
    const bobInbox = track(await inboxSocket(bob.token));
    expect((await sendMessage(bob, id)).status).toBe(201);
    await bobInbox.waitFor((f) => f.some((x) => x.type === "newMessage"));
    const aliceRoom = track(await conversationSocket(id, alice.token));
    const bobRoom = track(await conversationSocket(id, bob.token));
    aliceRoom.ws.send(typing());
    const expected = { type: "typing", data: { conversationId: id, userId: alice.userId } };
    await bobRoom.waitFor((f) => f.some((x) => x.type === "typing"));
    await bobInbox.waitFor((f) => f.some((x) => x.type === "typing"));
    expect(typingOf(bobRoom)).toEqual([expected]);
    expect(typingOf(bobInbox)).toEqual([expected]);
    await sleep(100);
    expect(typingOf(aliceRoom)).toEqual([]);
  });

  it("relays an inbox socket's typing to the room and the other connected inboxes", async () => {
    const [alice, bob] = await registerUsers("typ", "typ");
    const id = await createConversation(alice, bob);
    const aliceInbox = track(await inboxSocket(alice.token));
    const bobInbox = track(await inboxSocket(bob.token));
    expect((await sendMessage(alice, id)).status).toBe(201);
    await bobInbox.waitFor((f) => f.some((x) => x.type === "newMessage"));
    const bobRoom = track(await conversationSocket(id, bob.token));
    aliceInbox.ws.send(typing(id));
    await bobRoom.waitFor((f) => f.some((x) => x.type === "typing"));
    await bobInbox.waitFor((f) => f.some((x) => x.type === "typing"));
    expect(typingOf(bobInbox)[0].data).toEqual({ conversationId: id, userId: alice.userId });
    // The inbox needs the id; a conversation the user is not in is refused.
    aliceInbox.ws.send(typing());
    aliceInbox.ws.send(typing(999_999_999));
    await aliceInbox.waitFor((f) => f.filter((x) => x.type === "error").length === 2);
    expect(errorsOf(aliceInbox).map((e) => e.error.code)).toEqual(["forbidden", "forbidden"]);
  });

  it("relays at most one per 2 seconds per socket", async () => {
    const [alice, bob] = await registerUsers("typ", "typ");
    const id = await createConversation(alice, bob);
    const aliceRoom = track(await conversationSocket(id, alice.token));
    const bobRoom = track(await conversationSocket(id, bob.token));
    for (let i = 0; i < 5; i++) aliceRoom.ws.send(typing(id));
    await bobRoom.waitFor((f) => f.some((x) => x.type === "typing"));
    await sleep(500);
    expect(typingOf(bobRoom)).toHaveLength(1);
    // Another socket of the same user has its own allowance.
    const second = track(await conversationSocket(id, alice.token));
    second.ws.send(typing());
    await bobRoom.waitFor((f) => f.filter((x) => x.type === "typing").length === 2);
    await sleep(1600);
    aliceRoom.ws.send(typing());
    await bobRoom.waitFor((f) => f.filter((x) => x.type === "typing").length === 3);
    expect(errorsOf(aliceRoom)).toEqual([]);
  });

  it("is never stored and costs no D1 query", async () => {
    const [alice, bob] = await registerUsers("typ", "typ");
    const id = await createConversation(alice, bob);
    const aliceInbox = track(await inboxSocket(alice.token));
    const aliceRoom = track(await conversationSocket(id, alice.token));
    const bobRoom = track(await conversationSocket(id, bob.token));
    const bobInbox = track(await inboxSocket(bob.token));
    await sleep(200);
    const before = await shardD1Of(id)
      .prepare(
        "select (select count(*) from messages) as n, (select last_seq || last_activity_at from conversations where id = ?) as c",
      )
      .bind(id)
      .first();
    const queries = await countD1(async () => {
      aliceRoom.ws.send(typing());
      await bobRoom.waitFor((f) => f.some((x) => x.type === "typing"));
      aliceInbox.ws.send(typing(id));
      await sleep(2100);
      aliceInbox.ws.send(typing(id));
      await bobRoom.waitFor((f) => f.filter((x) => x.type === "typing").length === 2);
    });
    expect(queries).toBe(0);
    const after = await shardD1Of(id)
      .prepare(
        "select (select count(*) from messages) as n, (select last_seq || last_activity_at from conversations where id = ?) as c",
      )
      .bind(id)
      .first();
    expect(after).toEqual(before);
    expect(bobInbox.frames.filter((f) => f.type === "newMessage")).toEqual([]);
    // The count is not blind: a message, through the same Worker and objects, costs statements.
    const sending = await countD1(async () => {
      expect((await sendMessage(alice, id)).status).toBe(201);
      await bobRoom.waitFor((f) => f.some((x) => x.type === "newMessage"));
    });
    expect(sending).toBeGreaterThan(0);
  });

  it("refuses an invited participant with an error frame until they accept", async () => {
    const [alice, bob] = await registerUsers("typ", "typ");
    const id = await createInvitation(alice, bob);
    const aliceRoom = track(await conversationSocket(id, alice.token));
    const bobRoom = track(await conversationSocket(id, bob.token));
    const bobInbox = track(await inboxSocket(bob.token));
    bobRoom.ws.send(typing());
    bobInbox.ws.send(typing(id));
    await bobRoom.waitFor((f) => f.some((x) => x.type === "error"));
    await bobInbox.waitFor((f) => f.some((x) => x.type === "error"));
    expect(errorsOf(bobRoom)[0].error.code).toBe("forbidden");
    expect(errorsOf(bobInbox)[0].error.code).toBe("forbidden");
    await sleep(100);
    expect(typingOf(aliceRoom)).toEqual([]);
    await accept(bob, id);
    bobRoom.ws.send(typing());
    await aliceRoom.waitFor((f) => f.some((x) => x.type === "typing"));
    await sleep(2100);
    bobInbox.ws.send(typing(id));
    await aliceRoom.waitFor((f) => f.filter((x) => x.type === "typing").length === 2);
    expect(errorsOf(bobRoom)).toHaveLength(1);
  });
});
