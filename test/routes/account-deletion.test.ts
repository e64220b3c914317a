import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  getConversation,
  history,
  registerUser,
  registrationBody,
  sendMessage,
} from "../helpers/api";
import { inboxSocket } from "../helpers/sockets";

describe("DELETE /users/me", () => {
  it("needs the password (403), then ends sessions, leaves conversations, tombstones messages and frees the username", async () => {
    const [alice, bob] = await Promise.all([registerUser("del"), registerUser("del")]);
    const id = await createConversation(alice, bob);
    const sent = await sendMessage(alice, id, { clientMessageId: "gone" });
    await sendMessage(bob, id);
    const [bobInbox, aliceInbox] = await Promise.all([inboxSocket(bob.token), inboxSocket(alice.token)]);
    expect(
      (await call("DELETE", "/users/me", { token: alice.token, body: { password: "wrong password" } })).status,
    ).toBe(403);
    expect((await call("DELETE", "/users/me", { token: alice.token, body: { password: alice.password } })).status).toBe(
      204,
    );
    expect((await aliceInbox.closed).code).toBe(4001);
    await bobInbox.waitFor((f) => f.some((x) => x.type === "participantRemoved" && x.data.userId === alice.userId));
    expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(401);
    expect((await call("GET", `/users/${alice.username}`, { token: bob.token })).status).toBe(404);
    const view = await getConversation(bob, id);
    expect(view.participants.map((p: { userId: number }) => p.userId)).toEqual([bob.userId]);
    expect(view.rotationNeeded).toBe(true);
    const [, tombstone] = await history(bob, id); // newest first
    expect(tombstone).toEqual({
      messageId: sent.body.messageId,
      seq: 1,
      conversationId: id,
      senderId: alice.userId,
      senderUsername: null,
      senderDeviceId: alice.deviceId,
      keyEpoch: 1,
      timestamp: sent.body.timestamp,
      nonce: null,
      ciphertext: null,
      authTag: null,
      associatedData: null,
      signature: null,
      clientMessageId: "gone",
      attachments: null,
      relatesTo: null,
      expiresAt: null,
      deleted: true,
    });
    const { body } = await registrationBody(alice.username, "another password");
    expect((await call("POST", "/auth/register", { body })).status).toBe(201);
  });
});
