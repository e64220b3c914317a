// Contract v2's consent and roles through the library (against FakeParley), the epoch committed at
// creation (so nobody rotates before a first reply), and device approval that carries earlier epoch
// keys in the provisioning envelope.
import { describe, expect, it } from "vitest";
import {
  MAX_PROVISIONING_BYTES,
  MissingKeyError,
  ParleyClient,
  type ParleyClientOptions,
  provisioningCapacity,
} from "../../client/index.ts";
import { FakeParley } from "./fake-server.ts";

function world() {
  const server = new FakeParley();
  const make = (extra: Partial<ParleyClientOptions> = {}) =>
    new ParleyClient({ baseUrl: "http://parley.test", fetch: server.fetch, retry: { baseDelayMs: 1 }, ...extra });
  return { server, make };
}

async function people(...names: string[]) {
  const w = world();
  const clients: ParleyClient[] = [];
  for (const name of names) {
    const c = w.make();
    await c.register(name, `${name}'s password`);
    clients.push(c);
  }
  return { ...w, clients };
}

async function link(make: () => ParleyClient, owner: ParleyClient, username: string) {
  const laptop = make();
  const status = await laptop.login(username, `${username}'s password`, { deviceName: "laptop" });
  const waiting = laptop.waitForApproval({ pollIntervalMs: 5 });
  await owner.approveDevice(status.deviceId, { comparisonCode: status.comparisonCode! });
  await waiting;
  return laptop;
}

describe("the epoch committed at creation", () => {
  it("creates at epoch 1 (bound to 0), commits epoch 2 bound to the real id, and the first reply needs no rotation", async () => {
    const { server, clients } = await people("alice", "bob");
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    const conversation = await alice.createConversation(["bob"], { title: "t" });
    expect(conversation).toMatchObject({ epoch: 2, rotationNeeded: false, status: "member" });
    const commits = server.log.filter((r) => r.path.endsWith("/epochs"));
    expect(commits.map((c) => [c.path, c.body.epoch])).toEqual([
      [`/conversations/${conversation.conversationId}/epochs`, 2],
    ]);
    // No extra device listing: the devices wrapped for at creation are reused.
    expect(server.log.filter((r) => r.path.endsWith("/devices"))).toHaveLength(0);

    await alice.sendMessage(conversation.conversationId, "hello bob");
    expect((await bob.acceptConversation(conversation.conversationId)).status).toBe("member");
    const reply = await bob.sendMessage(conversation.conversationId, "hello alice");
    expect(reply.keyEpoch).toBe(2);
    expect(server.log.filter((r) => r.path.endsWith("/epochs"))).toHaveLength(1); // bob did not rotate
    const read = await alice.messages(conversation.conversationId, { limit: 10 });
    expect(read.map((m) => [m.keyEpoch, m.ok && m.text])).toEqual([
      [2, "hello alice"],
      [2, "hello bob"],
    ]);
  });

  it("handles losing the race for epoch 2 like any rotation: the winner's key is used", async () => {
    const { server, clients } = await people("alice", "bob");
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    let raced = false;
    server.before = async (method, path) => {
      if (method === "POST" && path.endsWith("/epochs") && !raced) {
        raced = true;
        const id = Number(path.split("/")[2]);
        await bob.acceptConversation(id);
        await bob.rotateKey(id); // bob commits epoch 2 first
      }
      return undefined;
    };
    const conversation = await alice.createConversation(["bob"]);
    expect(conversation.epoch).toBe(2);
    const sent = await alice.sendMessage(conversation.conversationId, "after the race");
    expect(sent.keyEpoch).toBe(2);
    expect((await bob.messages(conversation.conversationId))[0]).toMatchObject({ ok: true, text: "after the race" });
  });
});

describe("approval carries earlier epoch keys", () => {
  it("lets the new device read messages of earlier epochs, sent before it was approved", async () => {
    const { server, make, clients } = await people("alice", "bob", "carol");
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    const one = await alice.createConversation(["bob"], { title: "one" });
    await alice.sendMessage(one.conversationId, "epoch two");
    await alice.addParticipant(one.conversationId, "carol"); // epoch 3
    await alice.sendMessage(one.conversationId, "epoch three");
    await alice.rotateKey(one.conversationId); // epoch 4, current
    await alice.sendMessage(one.conversationId, "epoch four");
    const two = await bob.createConversation(["alice"]);
    await bob.sendMessage(two.conversationId, "from bob");

    const laptop = await link(make, alice, "alice");
    const read = await laptop.messages(one.conversationId, { limit: 10 });
    expect(read.map((m) => [m.keyEpoch, m.ok && m.text])).toEqual([
      [4, "epoch four"],
      [3, "epoch three"],
      [2, "epoch two"],
    ]);
    expect((await laptop.messages(two.conversationId)).map((m) => m.ok && m.text)).toEqual(["from bob"]);
    // The envelope stays within the contract's limit; the keys are not in the approval body.
    const approve = server.log.find((r) => r.path.endsWith("/approve"))!;
    expect(atob(approve.body.provisioning).length).toBeLessThanOrEqual(MAX_PROVISIONING_BYTES);
    expect(approve.body.keys.map((k: { epoch: number }) => k.epoch).sort()).toEqual([2, 4]);
    await laptop.sendMessage(one.conversationId, "from the laptop");
  });

  it("fills the 4 KiB envelope newest first; older epochs stay unreadable on the new device", async () => {
    const { server, make, clients } = await people("alice", "bob");
    const [alice] = clients as [ParleyClient];
    const capacity = provisioningCapacity(48); // Ed25519 PKCS #8
    expect(capacity).toBe(87);
    const { conversationId } = await alice.createConversation(["bob"]);
    let clock = Date.now();
    server.now = () => (clock += 120_000); // every epoch a couple of minutes after the last
    const total = capacity + 5;
    for (let i = 0; i < total; i++) {
      await alice.sendMessage(conversationId, `m${i}`); // under epoch i + 2
      await alice.rotateKey(conversationId);
    }
    server.now = () => Date.now();
    const laptop = await link(make, alice, "alice");
    const approve = server.log.find((r) => r.path.endsWith("/approve"))!;
    expect(atob(approve.body.provisioning).length).toBeLessThanOrEqual(MAX_PROVISIONING_BYTES);
    const read = (await laptop.messages(conversationId, { limit: 100 })).reverse();
    expect(read).toHaveLength(total);
    // Epochs 2 … total+1 carry messages; the current one (total+2) has none. The newest `capacity`
    // earlier epochs came in the envelope (epoch 1, replaced at once, is ranked last).
    const readable = read.filter((m) => m.ok).map((m) => m.keyEpoch);
    expect(readable).toEqual(Array.from({ length: capacity }, (_, i) => total + 2 - capacity + i));
    for (const m of read.filter((x) => !x.ok)) expect(m.ok || m.error).toBeInstanceOf(MissingKeyError);
  }, 60_000);
});

describe("consent, roles and blocking", () => {
  it("accepts and declines message requests, blocks on decline, and lists, blocks and unblocks people", async () => {
    const { server, clients } = await people("alice", "bob", "carol");
    const [alice, bob, carol] = clients as [ParleyClient, ParleyClient, ParleyClient];
    const c = await alice.createConversation(["bob", "carol"]);
    const asBob = await bob.getConversation(c.conversationId);
    expect(asBob.status).toBe("invited");
    await expect(bob.sendMessage(c.conversationId, "too early")).rejects.toMatchObject({
      status: 403,
      message: "accept the conversation first",
    });
    expect((await bob.acceptConversation(c.conversationId)).status).toBe("member");
    await bob.sendMessage(c.conversationId, "accepted");

    await carol.declineConversation(c.conversationId, { block: true });
    expect(server.log.at(-1)).toMatchObject({
      method: "POST",
      path: `/conversations/${c.conversationId}/decline`,
      body: { block: true },
    });
    await expect(carol.getConversation(c.conversationId)).rejects.toMatchObject({ status: 403 });
    expect((await carol.blocked()).map((b) => b.username)).toEqual(["alice"]);
    await expect(alice.createConversation(["carol"])).rejects.toMatchObject({
      status: 403,
      message: "this user cannot be added",
    });
    await expect(alice.addParticipant(c.conversationId, "carol")).rejects.toMatchObject({ status: 403 });
    await carol.unblock("alice");
    expect(await carol.blocked()).toEqual([]);
    await carol.block("bob");
    expect(server.log.at(-1)).toMatchObject({ method: "PUT", path: "/users/me/blocked/bob" });
    expect((await carol.blocked()).map((b) => b.username)).toEqual(["bob"]);
  });

  it("leaves a conversation (a DELETE of one's own participant), and the next sender rotates", async () => {
    const { server, clients } = await people("alice", "bob");
    const [alice, bob] = clients as [ParleyClient, ParleyClient];
    const { conversationId } = await alice.createConversation(["bob"]);
    await bob.acceptConversation(conversationId);
    await bob.leaveConversation(conversationId);
    expect(server.log.at(-1)).toMatchObject({
      method: "DELETE",
      path: `/conversations/${conversationId}/participants/bob`,
    });
    await expect(bob.getConversation(conversationId)).rejects.toMatchObject({ status: 403 });
    const sent = await alice.sendMessage(conversationId, "alone now");
    expect(sent.keyEpoch).toBe(3);
  });

  it("reads every page of the paged list, and refuses a bare array", async () => {
    const { server, clients } = await people("alice", "bob");
    const [alice] = clients as [ParleyClient];
    for (let i = 0; i < 3; i++) await alice.createConversation(["bob"], { title: `c${i}` });
    const all = (await alice.listConversations()).conversations;
    // Serve one conversation a page.
    server.tamper = (method, path, body) => {
      if (method !== "GET" || path !== "/conversations") return undefined;
      const cursor = Number(server.log.at(-1)!.path.match(/cursor=(\d+)/)?.[1] ?? 0);
      return {
        conversations: body.conversations.slice(cursor, cursor + 1),
        nextCursor: cursor < 2 ? String(cursor + 1) : null,
      };
    };
    expect((await alice.allConversations()).map((c) => c.title)).toEqual(all.map((c) => c.title));
    expect(server.log.filter((r) => r.path.startsWith("/conversations?")).map((r) => r.path)).toEqual([
      "/conversations?limit=100",
      "/conversations?limit=100&cursor=1",
      "/conversations?limit=100&cursor=2",
    ]);
    const page = await alice.listConversations({ limit: 1, cursor: "1" });
    expect(page).toMatchObject({ nextCursor: "2" });
    expect(server.log.at(-1)!.path).toBe("/conversations?limit=1&cursor=1");
    server.tamper = (method, path, body) =>
      method === "GET" && path === "/conversations" ? body.conversations : undefined;
    await expect(alice.allConversations()).rejects.toThrow();
  });
});
