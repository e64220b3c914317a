import { describe, expect, it } from "vitest";
import {
  approve,
  call,
  createConversation,
  json,
  loginPendingDevice,
  registerUser,
  rotate,
  sendMessage,
  sleep,
} from "../helpers/api";
import { conversationSocket, inboxSocket, messagesOf, openSocket } from "../helpers/sockets";
import { signToken } from "../helpers/tokens";

const ticketFor = async (token: string) => {
  const res = await call("POST", "/ws/tickets", { token });
  expect(res.status).toBe(201);
  return (await json(res)).ticket as string;
};

describe("devices, epochs and tickets on sockets (v2)", () => {
  it("refuses a pending device's conversation socket (1008) while its inbox works, and admits it once approved", async () => {
    const [alice, bob] = await Promise.all([registerUser("dvs"), registerUser("dvs")]);
    const id = await createConversation(alice, bob);
    const laptop = await loginPendingDevice(alice, "laptop");
    const refused = await conversationSocket(id, laptop.token);
    expect(await refused.closed).toEqual({ code: 1008, reason: "device not linked yet" });
    // A ticket (which a pending device may ask for) is refused on a conversation socket too.
    const byTicket = await openSocket(
      `conversationId=${id}&ticket=${encodeURIComponent(await ticketFor(laptop.token))}`,
    );
    expect((await byTicket.closed).code).toBe(1008);
    const inbox = await inboxSocket(laptop.token);
    inbox.ws.send("ping");
    await inbox.waitFor((f) => f.includes("pong"));
    expect((await approve(alice, laptop)).status).toBe(200);
    await inbox.waitFor((f) => f.some((x) => x?.type === "deviceApproved"));
    expect(inbox.frames.find((x) => x?.type === "deviceApproved")).toEqual({
      type: "deviceApproved",
      data: { deviceId: laptop.deviceId },
    });
    // Approval takes effect for the device's existing session at once.
    const admitted = await conversationSocket(id, laptop.token);
    await sendMessage(bob, id);
    await admitted.waitFor((f) => messagesOf(f).length === 1);
  });

  it("tells the active devices' inboxes about a pending device, and not the pending one's", async () => {
    const alice = await registerUser("dvs");
    const phone = await inboxSocket(alice.token);
    const laptop = await loginPendingDevice(alice, "laptop");
    await phone.waitFor((f) => f.some((x) => x?.type === "devicePending"));
    expect(phone.frames).toEqual([{ type: "devicePending", data: { deviceId: laptop.deviceId, name: "laptop" } }]);
    const laptopInbox = await inboxSocket(laptop.token);
    const tablet = await loginPendingDevice(alice, "tablet");
    await phone.waitFor((f) => f.filter((x) => x?.type === "devicePending").length === 2);
    await sleep(100);
    expect(laptopInbox.frames.filter((x) => x?.type === "devicePending")).toEqual([]);
    expect(phone.frames.at(-1).data).toEqual({ deviceId: tablet.deviceId, name: "tablet" });
  });

  it("sends epochChanged to the conversation's sockets and to the participants' inboxes", async () => {
    const [alice, bob, carol] = await Promise.all([registerUser("dvs"), registerUser("dvs"), registerUser("dvs")]);
    const id = await createConversation(alice, bob);
    const [room, bobInbox, carolInbox] = await Promise.all([
      conversationSocket(id, bob.token),
      inboxSocket(bob.token),
      inboxSocket(carol.token),
    ]);
    expect(await rotate(alice, id)).toBe(2);
    const event = {
      type: "epochChanged",
      data: { conversationId: id, epoch: 2, by: { userId: alice.userId, deviceId: alice.deviceId } },
    };
    await room.waitFor((f) => f.length === 1);
    await bobInbox.waitFor((f) => f.length === 1);
    expect(room.frames).toEqual([event]);
    expect(bobInbox.frames).toEqual([event]);
    await sleep(100);
    expect(carolInbox.frames).toEqual([]);
    // The old epoch is refused from now on; the new one is delivered to both.
    expect((await sendMessage(alice, id)).status).toBe(409);
    expect((await sendMessage(alice, id, { keyEpoch: 2 })).status).toBe(201);
    await room.waitFor((f) => messagesOf(f).length === 1);
    await bobInbox.waitFor((f) => messagesOf(f).length === 1);
  });

  it("admits a ticket once, and closes its socket at the expiry of the token that asked for it", async () => {
    const [alice, bob] = await Promise.all([registerUser("dvs"), registerUser("dvs")]);
    const id = await createConversation(alice, bob);
    const shortLived = await signToken(bob, { expiresAt: Math.floor(Date.now() / 1000) + 2 });
    const ticket = await ticketFor(shortLived);
    const socket = await openSocket(`conversationId=${id}&ticket=${encodeURIComponent(ticket)}`);
    const again = await openSocket(`conversationId=${id}&ticket=${encodeURIComponent(ticket)}`);
    expect((await again.closed).code).toBe(1008); // single use
    await sendMessage(alice, id);
    await socket.waitFor((f) => messagesOf(f).length === 1);
    await sleep(2100);
    await sendMessage(alice, id);
    expect(await socket.closed).toEqual({ code: 1008, reason: "token expired" });
    expect(messagesOf(socket.frames)).toHaveLength(1);
  });

  it("closes a ticket inbox socket at its token's expiry when the client speaks", async () => {
    const bob = await registerUser("dvs");
    const shortLived = await signToken(bob, { expiresAt: Math.floor(Date.now() / 1000) + 2 });
    const socket = await openSocket(`ticket=${encodeURIComponent(await ticketFor(shortLived))}`);
    socket.ws.send("hello");
    await socket.waitFor((f) => f.some((x) => x?.type === "error"));
    await sleep(2100);
    socket.ws.send("hello");
    expect(await socket.closed).toEqual({ code: 1008, reason: "token expired" });
  });

  it("closes the sockets of an ended session with 4001, and only those", async () => {
    const [alice, bob] = await Promise.all([registerUser("dvs"), registerUser("dvs")]);
    const id = await createConversation(alice, bob);
    const laptop = await loginPendingDevice(alice, "laptop");
    expect((await approve(alice, laptop)).status).toBe(200);
    const [room, inbox, otherDevice] = await Promise.all([
      conversationSocket(id, alice.token),
      inboxSocket(alice.token),
      inboxSocket(laptop.token),
    ]);
    expect((await call("POST", "/auth/logout", { token: alice.token })).status).toBe(204);
    expect(await room.closed).toEqual({ code: 4001, reason: "session ended" });
    expect(await inbox.closed).toEqual({ code: 4001, reason: "session ended" });
    otherDevice.ws.send("ping");
    await otherDevice.waitFor((f) => f.includes("pong"));
    const refused = await conversationSocket(id, alice.token);
    expect((await refused.closed).code).toBe(1008);
  });
});
