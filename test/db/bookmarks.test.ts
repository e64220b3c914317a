import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BOOKMARK_HEADER } from "../../contract";
import { encodeBookmarks, parseBookmarks } from "../../src/db/bookmarks";
import { call, createConversation, errorOf, json, messageBody, registerUser } from "../helpers/api";
import { snapshot } from "../helpers/db";

/** A D1 binding that records the constraint or bookmark of every session opened over it. */
function recordingSessions(d1: D1Database) {
  const opened: (string | undefined)[] = [];
  const binding = new Proxy(d1, {
    get(target, prop) {
      if (prop === "withSession") {
        return (constraint?: string) => {
          opened.push(constraint);
          return target.withSession(constraint as D1SessionConstraint);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { binding, opened };
}

/** A GET on an env with some bindings replaced, sending `bookmark` if given. */
const fetchWith = (env: Record<string, unknown>, path: string, token: string, bookmark?: string) =>
  call("GET", path, { token, env, headers: bookmark ? { [BOOKMARK_HEADER]: bookmark } : {} });

describe("D1 Sessions API bookmarks (read your own writes across replicas)", () => {
  it("every answer that touched a database carries a bookmark for it, and a client's read with it sees its write", async () => {
    const [alice, bob] = [await registerUser("bk"), await registerUser("bk")];
    const id = await createConversation(alice, bob);
    const sent = await call("POST", "/messages", { token: alice.token, body: messageBody(id) });
    expect(sent.status).toBe(201);
    const token = sent.headers.get(BOOKMARK_HEADER);
    expect(token).toBeTruthy();
    // The write went to the conversation's shard: its bookmark is in the token.
    expect(Object.keys(parseBookmarks(token!))).toContain(String(id % 4096));

    const read = await call("GET", `/conversations/${id}/messages`, {
      token: alice.token,
      headers: { [BOOKMARK_HEADER]: token! },
    });
    expect(read.status).toBe(200);
    const { messageId } = await json(sent);
    expect((await json(read)).map((m: { messageId: number }) => m.messageId)).toContain(messageId);
    // The answer keeps what the client sent and adds what this request touched (the directory's session check).
    const after = parseBookmarks(read.headers.get(BOOKMARK_HEADER)!);
    expect(Object.keys(after)).toEqual(expect.arrayContaining(["d", String(id % 4096)]));
  });

  it("opens each database's session at the client's bookmark, or unconstrained without one", async () => {
    const alice = await registerUser("bk");
    const bob = await registerUser("bk");
    const id = await createConversation(alice, bob);
    const shardName = `SHARD_${id % 4096}`;
    const shard = recordingSessions(env[shardName as "SHARD_0"]);
    const directory = recordingSessions(env.DIRECTORY);
    const overrides = { [shardName]: shard.binding, DIRECTORY: directory.binding };

    const first = await fetchWith(overrides, `/conversations/${id}`, alice.token);
    expect(first.status).toBe(200);
    expect(shard.opened).toEqual(["first-unconstrained"]);
    expect(directory.opened).toEqual(["first-unconstrained"]);

    const given = parseBookmarks(first.headers.get(BOOKMARK_HEADER)!);
    const second = await fetchWith(overrides, `/conversations/${id}`, alice.token, encodeBookmarks(given));
    expect(second.status).toBe(200);
    expect(shard.opened[1]).toBe(given[String(id % 4096)]);
    expect(directory.opened[1]).toBe(given.d);
  });

  it("answers 400 for a bookmark it did not give, naming the header, and stores nothing", async () => {
    const alice = await registerUser("bk");
    const bob = await registerUser("bk");
    const id = await createConversation(alice, bob);
    const before = await snapshot();
    const forged = [
      "not base64 at all!",
      encodeBookmarks({ nope: "x" }),
      btoa(JSON.stringify(["a"])),
      encodeBookmarks({ d: "x".repeat(300) }),
      "A".repeat(20_000),
    ];
    for (const bookmark of forged) {
      const res = await call("POST", "/messages", {
        token: alice.token,
        body: messageBody(id),
        headers: { [BOOKMARK_HEADER]: bookmark },
      });
      expect(res.status).toBe(400);
      const error = await errorOf(res);
      expect(error.code).toBe("bad_request");
      expect(error.details).toEqual([{ path: BOOKMARK_HEADER, message: "must be a bookmark this API gave" }]);
    }
    expect(await snapshot()).toEqual(before);
  });
});
