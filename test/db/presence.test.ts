import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createDb } from "../../src/db/client";
import { insertMessage } from "../../src/db/message-insert";
import { participantIds } from "../../src/db/participation";
import { onlineUsers, setInboxPresence } from "../../src/db/presence";
import { shardOfId } from "../../src/db/shards";
import { createConversation, loginPendingDevice, randomBytes, registerUser } from "../helpers/api";
import { directoryD1, shardDbOf } from "../helpers/databases";
import { inboxSocket, sleep } from "../helpers/sockets";

/** Presence is account data: it lives in the directory. */
const directory = () => createDb(directoryD1());
/** Who of the conversation's participants the delivery of a message would forward it to (as src/realtime/ does). */
const onlineParticipants = async (conversationId: number) =>
  [...(await onlineUsers(directory(), await participantIds(shardDbOf(conversationId), conversationId)))].sort(
    (a, b) => a - b,
  );

const presenceOf = (userId: number) =>
  directoryD1()
    .prepare("select online, version from inbox_presence where user_id = ?")
    .bind(userId)
    .first<{ online: number; version: number }>();

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 50; i++) {
    const value = await read();
    if (ok(value)) return value;
    await sleep(50);
  }
  return read();
}

describe("inbox presence", () => {
  it("is online while any device of the user is connected, offline once the last one leaves", async () => {
    const alice = await registerUser("prs");
    expect(await presenceOf(alice.userId)).toBeNull();
    const phone = await inboxSocket(alice.token);
    expect((await presenceOf(alice.userId))?.online).toBe(1); // written before the 101
    // Another device of the user's (a pending one: it may open the inbox) keeps the user online.
    const laptop = await inboxSocket((await loginPendingDevice(alice, "laptop")).token);
    phone.ws.close(1000, "bye");
    await phone.closed;
    await sleep(100);
    expect((await presenceOf(alice.userId))?.online).toBe(1);
    laptop.ws.close(1000, "bye");
    await laptop.closed;
    expect(
      (
        await until(
          () => presenceOf(alice.userId),
          (p) => p?.online === 0,
        )
      )?.online,
    ).toBe(0);
  });

  it("ignores a write older than the last one", async () => {
    const alice = await registerUser("prs");
    const db = directory();
    await setInboxPresence(db, alice.userId, true, 5);
    await setInboxPresence(db, alice.userId, false, 4);
    expect(await presenceOf(alice.userId)).toEqual({ online: 1, version: 5 });
    await setInboxPresence(db, alice.userId, false, 6);
    expect(await presenceOf(alice.userId)).toEqual({ online: 0, version: 6 });
  });

  it("a commit's delivery names only the participants with a device connected as inbox recipients", async () => {
    const [alice, bob, carol] = await Promise.all([registerUser("prs"), registerUser("prs"), registerUser("prs")]);
    const id = await createConversation(alice, bob, carol);
    await inboxSocket(bob.token);
    const outcome = await insertMessage(
      shardDbOf(id),
      shardOfId(id),
      {
        conversationId: id,
        keyEpoch: 1,
        nonce: randomBytes(12),
        ciphertext: randomBytes(8),
        authTag: randomBytes(16),
        associatedData: null,
        signature: randomBytes(64),
        clientMessageId: null,
      },
      { userId: alice.userId, deviceId: alice.deviceId, sessionId: alice.sessionId, exp: Date.now() / 1000 + 600 },
    );
    // The commit reads the participants in its own batch; the delivery then asks the directory who is online.
    expect(outcome.kind === "created" && [...outcome.participantIds].sort((a, b) => a - b)).toEqual(
      [alice.userId, bob.userId, carol.userId].sort((a, b) => a - b),
    );
    const recipients = outcome.kind === "created" ? await onlineUsers(directory(), outcome.participantIds) : null;
    expect(recipients && [...recipients]).toEqual([bob.userId]);
    expect(await onlineParticipants(id)).toEqual([bob.userId]);
  });

  it("an online mark that its inbox stopped renewing counts as offline", async () => {
    const [alice, bob] = await Promise.all([registerUser("prs"), registerUser("prs")]);
    const id = await createConversation(alice, bob);
    const db = directory();
    // Written a day ago by an inbox that a deploy or a crash then took away, with no close.
    await setInboxPresence(db, bob.userId, true, 1, Date.now() - 24 * 3600_000);
    expect(await onlineParticipants(id)).toEqual([]);
    await setInboxPresence(db, bob.userId, true, 2);
    expect(await onlineParticipants(id)).toEqual([bob.userId]);
  });

  it("an inbox renews its lease from its alarm while a device is connected", async () => {
    const alice = await registerUser("prs");
    await inboxSocket(alice.token);
    const expiry = () =>
      directoryD1()
        .prepare("select expires_at from inbox_presence where user_id = ?")
        .bind(alice.userId)
        .first<number>("expires_at");
    const first = await expiry();
    expect(first).toBeGreaterThan(Date.now());
    await sleep(20);
    expect(await runDurableObjectAlarm(env.USER_INBOX.getByName(String(alice.userId)))).toBe(true);
    expect(await expiry()).toBeGreaterThan(first!);
  });
});
