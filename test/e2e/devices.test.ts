// Linking a second device at the protocol level: the pending login announces itself on the user's
// inbox sockets (devicePending), the approval reaches the new device (deviceApproved) and everyone
// who shares a conversation (deviceAdded), and the approved device can post at once.
import { describe, expect, it } from "vitest";
import { newDeviceKeys } from "../../tools/wire/index.ts";
import type { Frame, Session } from "./helpers.js";
import {
  api,
  connectSocket,
  createConversation,
  expectStatus,
  inboxSocketUrl,
  newUsers,
  randomB64,
  type TestUser,
  waitForMessages,
  wsUrl,
} from "./helpers.js";
import { trackSockets } from "./sockets.js";

const { track, open } = trackSockets();

type DataOf<T extends Frame["type"]> = Extract<Frame, { type: T; data: unknown }>["data"];
const ofType = <T extends Frame["type"]>(frames: Frame[], type: T): DataOf<T>[] =>
  frames.flatMap((f) => (f.type === type && "data" in f ? [f.data as DataOf<T>] : []));

describe("device events on inbox sockets", () => {
  it("devicePending to the user's active devices, deviceApproved to the new one, deviceAdded to everyone sharing a conversation", async () => {
    const [alice, bob, carol] = (await newUsers(3, "devev")) as [TestUser, TestUser, TestUser];
    const conv = await createConversation(alice, [bob]);
    const aliceInbox = await open(inboxSocketUrl(alice));
    const bobInbox = await open(inboxSocketUrl(bob));
    const carolInbox = await open(inboxSocketUrl(carol)); // shares nothing with alice

    const keys = newDeviceKeys("laptop");
    const pending = await api<Session>("POST", "/auth/login", {
      body: { username: alice.username, password: alice.password, device: keys },
    });
    expectStatus(pending, 200, "pending login");
    expect(pending.body.deviceStatus).toBe("pending");
    const laptop = pending.body;
    expect(
      await aliceInbox.waitFor((frames) => ofType(frames, "devicePending").find((d) => d.deviceId === laptop.deviceId)),
    ).toEqual({ deviceId: laptop.deviceId, name: "laptop" });

    // Pending: the inbox only; no conversation socket, no posting.
    const laptopInbox = await open(wsUrl({ token: laptop.accessToken }));
    const refused = track(connectSocket(wsUrl({ conversationId: conv.conversationId, token: laptop.accessToken })));
    expect(await refused.closed).toMatchObject({ code: 1008, reason: "device not linked yet" });
    const post = () =>
      api<{ seq: number }>("POST", "/messages", {
        token: laptop.accessToken,
        body: {
          conversationId: conv.conversationId,
          keyEpoch: 1,
          nonce: randomB64(12),
          ciphertext: randomB64(20),
          authTag: randomB64(16),
          signature: randomB64(64),
        },
      });
    expect((await post()).status).toBe(403);

    // Alice's first device approves: the account key signs the laptop, and epoch 1 is wrapped for it.
    const approved = await api("POST", `/devices/${laptop.deviceId}/approve`, {
      token: alice.token,
      body: {
        signature: alice.identity.signDevice(keys.identityKey, keys.signingKey),
        provisioning: randomB64(150),
        keys: [{ conversationId: conv.conversationId, epoch: 1, wrappedKey: randomB64(93), signature: randomB64(64) }],
      },
    });
    expectStatus(approved, 200, "approve");
    expect(
      await laptopInbox.waitFor((frames) =>
        ofType(frames, "deviceApproved").find((d) => d.deviceId === laptop.deviceId),
      ),
    ).toEqual({ deviceId: laptop.deviceId });
    const added = { userId: alice.userId, username: alice.username, deviceId: laptop.deviceId };
    for (const inbox of [aliceInbox, bobInbox]) {
      expect(await inbox.waitFor((frames) => ofType(frames, "deviceAdded")[0])).toEqual(added);
    }

    // Active at once, in the same session: it posts under epoch 1 (it was given that key) and Bob gets it.
    const sent = await post();
    expect(sent.status).toBe(201);
    const [received] = await waitForMessages(bobInbox, 1, conv.conversationId);
    expect(received).toMatchObject({ senderId: alice.userId, senderDeviceId: laptop.deviceId, keyEpoch: 1 });
    const provisioning = await api<{ provisioning: string }>("GET", `/devices/${laptop.deviceId}/provisioning`, {
      token: laptop.accessToken,
    });
    expect(provisioning.status).toBe(200);
    expect(provisioning.body.provisioning).toEqual(expect.any(String));

    // Nobody else heard of it; Bob never saw the pending request, only the approved device.
    expect(ofType(carolInbox.frames, "deviceAdded")).toEqual([]);
    expect(ofType(bobInbox.frames, "devicePending")).toEqual([]);
    expect(ofType(aliceInbox.frames, "deviceApproved")).toEqual([]);
  });
});
