import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { messageFrame } from "../../src/realtime/frames";
import { addParticipant, call, createConversation, getConversation, registerUser, sendMessage } from "../helpers/api";
import { commitSilently } from "../helpers/messages";
import { inboxSocket, messagesOf } from "../helpers/sockets";

const inbox = (userId: number) => env.USER_INBOX.getByName(String(userId));

describe("inbox ordering state after a reset and across a re-add", () => {
  it("a device's first frames arriving out of order are both delivered, in order", async () => {
    const alice = await registerUser("irs");
    const bob = await registerUser("irs");
    const id = await createConversation(alice, bob);
    await sendMessage(alice, id);
    const socket = await inboxSocket(bob.token); // the inbox's ordering state starts afresh
    const second = await commitSilently(alice, id);
    const third = await commitSilently(alice, id);
    await inbox(bob.userId).deliverMessages([messageFrame(third)]);
    await inbox(bob.userId).deliverMessages([messageFrame(second)]);
    await socket.waitFor((f) => messagesOf(f).length === 2, 3000);
    expect(messagesOf(socket.frames).map((m) => m.seq)).toEqual([second.seq, third.seq]);
  });

  it("a removal that arrives after the user was added back does not silence the conversation", async () => {
    const alice = await registerUser("irs");
    const bob = await registerUser("irs");
    const id = await createConversation(alice, bob);
    const socket = await inboxSocket(bob.token);
    const before = await getConversation(alice, id);
    const firstJoin = before.participants.find((p: any) => p.userId === bob.userId).joinedAt;
    const removal = {
      type: "participantRemoved" as const,
      data: { conversationId: id, userId: bob.userId, username: bob.username, by: alice.userId },
    };
    expect(
      (await call("DELETE", `/conversations/${id}/participants/${bob.username}`, { token: alice.token })).status,
    ).toBe(204);
    // Adding him back is an epoch commit (2), which also ends the rotation the removal asked for.
    expect((await addParticipant(alice, id, bob)).status).toBe(201);
    await socket.waitFor((f) => f.some((x) => x.type === "conversationCreated"));
    // The removal's inbox call again, late, as the Worker makes it (with the membership it ends).
    await inbox(bob.userId).deliverEvent(removal, id, { lastSeq: before.lastSeq ?? 0, joinedAt: firstJoin });
    expect((await sendMessage(alice, id, { keyEpoch: 2 })).status).toBe(201);
    await socket.waitFor((f) => messagesOf(f).length === 1, 3000);
  });
});
