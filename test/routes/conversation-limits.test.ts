import { createExecutionContext, listDurableObjectIds } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import {
  activeDeviceIds,
  addBody,
  call,
  createConversation,
  createInvitation,
  registerUsers,
  sleep,
  wrapFor,
} from "../helpers/api";
import { countInShards } from "../helpers/databases";
import { inboxSocket } from "../helpers/sockets";

/** Local rate limiting counts in fixed windows aligned to the wall clock: start right after a boundary. */
async function withinOneWindow(periodSeconds: number, neededMs = 8000): Promise<void> {
  const periodMs = periodSeconds * 1000;
  const left = periodMs - (Date.now() % periodMs);
  if (left < neededMs) await sleep(left + 20);
}

const conversationCount = (userId: number) =>
  countInShards("select count(*) as n from participants where user_id = ?", userId);

describe("conversation limits", () => {
  it("creating and adding together: 20 a minute per user, then 429 storing nothing", async () => {
    const [alice, bob, carol] = await registerUsers("lim", "lim", "lim");
    await withinOneWindow(60);
    const id = await createInvitation(alice, bob); // 1
    const statuses: number[] = [];
    for (let i = 0; i < 18; i++)
      statuses.push(
        (
          await call("POST", `/conversations`, {
            token: alice.token,
            body: {
              participants: [alice.username, bob.username],
              keys: await Promise.all((await activeDeviceIds(alice, alice, bob)).map((d) => wrapFor(alice, d))),
            },
          })
        ).status,
      );
    expect(statuses).toEqual(Array(18).fill(201)); // 19 so far
    const add = await call("POST", `/conversations/${id}/participants`, {
      token: alice.token,
      body: await addBody(alice, id, carol),
    });
    expect(add.status, "the 20th: an add").toBe(201);
    const before = await conversationCount(alice.userId);
    const limited = await call("POST", "/conversations", {
      token: alice.token,
      body: {
        participants: [alice.username, carol.username],
        keys: await Promise.all((await activeDeviceIds(alice, alice, carol)).map((d) => wrapFor(alice, d))),
      },
    });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("Retry-After")).toBe("60");
    expect(await conversationCount(alice.userId)).toBe(before);
    // Another user is not limited by alice's use.
    expect((await createInvitation(bob, carol)) > 0).toBe(true);
  }, 60_000);

  it("at most MAX_CONVERSATIONS_PER_USER conversations per user: creating or joining one more is 409", async () => {
    const [alice, bob, carol] = await registerUsers("cap", "cap", "cap");
    const limited = { ...env, MAX_CONVERSATIONS_PER_USER: "2" };
    const post = async (path: string, token: string, body: unknown) =>
      app.fetch(
        new Request(`http://parley.test${path}`, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${token}`,
            "Content-Type": "application/json",
            "CF-Connecting-IP": "10.9.9.9",
          },
          body: JSON.stringify(body),
        }),
        limited,
        createExecutionContext(),
      );
    const keysFor = async (...users: (typeof alice)[]) =>
      Promise.all((await activeDeviceIds(alice, ...users)).map((d) => wrapFor(alice, d)));
    const create = async (...others: (typeof alice)[]) =>
      post("/conversations", alice.token, {
        participants: [alice.username, ...others.map((u) => u.username)],
        keys: await keysFor(alice, ...others),
      });
    expect((await create(bob)).status).toBe(201);
    const second = await create(carol);
    expect(second.status).toBe(201);
    const third = await create(bob);
    expect(third.status, "alice is in 2 already").toBe(409);
    expect(await conversationCount(alice.userId)).toBe(2);
    // carol is in 1; a conversation of bob's that would be her 2nd is fine, her 3rd is not.
    const bobs = await createConversation(bob, carol);
    expect(await conversationCount(carol.userId)).toBe(2);
    const { conversationId } = (await second.json()) as { conversationId: number };
    const full = await post(`/conversations/${bobs}/participants`, bob.token, await addBody(bob, bobs, alice));
    expect(full.status, "alice cannot join a third").toBe(409);
    expect(await conversationCount(alice.userId)).toBe(2);
    expect(conversationId).toBeGreaterThan(0);
  });

  it("creation events wake only inboxes with a device connected", async () => {
    const [alice, bob, carol] = await registerUsers("wake", "wake", "wake");
    const bobInbox = await inboxSocket(bob.token);
    await createInvitation(alice, bob, carol);
    await bobInbox.waitFor((frames) => frames.some((f) => f?.type === "conversationCreated"));
    await sleep(200);
    const woken = (await listDurableObjectIds(env.USER_INBOX)).map((id) => id.toString());
    expect(woken).toContain(env.USER_INBOX.idFromName(String(bob.userId)).toString());
    expect(woken, "carol has no device connected").not.toContain(
      env.USER_INBOX.idFromName(String(carol.userId)).toString(),
    );
    bobInbox.ws.close(1000);
  });

  it("at most 8 sockets per device on one object: the 9th is refused with 1013", async () => {
    const [alice] = await registerUsers("socks");
    const open = [];
    for (let i = 0; i < 8; i++) open.push(await inboxSocket(alice.token));
    const ninth = await inboxSocket(alice.token);
    expect((await ninth.closed).code).toBe(1013);
    for (const socket of open) expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    for (const socket of open) socket.ws.close(1000);
  });
});
