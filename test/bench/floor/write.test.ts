import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { floorSend } from "../../../bench/floor/write";
import type { MessageResponse } from "../../../contract";
import { b64, call, createConversation, json, messageBody, randomBytes, registerUser } from "../../helpers/api";
import { shardD1Of } from "../../helpers/databases";

/** A plain message with 40 bytes of ciphertext (what the daily byte count is checked against). */
const plainMessage = (conversationId: number, clientMessageId: string) =>
  messageBody(conversationId, { clientMessageId, ciphertext: b64(randomBytes(40)) });

async function sendToFloor(token: string, body: unknown) {
  const published: MessageResponse[] = [];
  const ctx = createExecutionContext();
  const request = new Request("http://parley.test/__floor/messages", {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const response = await floorSend(request, env, ctx, async (message) => {
    published.push(message);
  });
  await waitOnExecutionContext(ctx);
  return { response, published };
}

describe("the write floor", () => {
  it("stores and publishes a message exactly as POST /messages would", async () => {
    const alice = await registerUser("floor");
    const bob = await registerUser("floor");
    const conversationId = await createConversation(alice, bob);
    const { response, published } = await sendToFloor(alice.token, plainMessage(conversationId, "floor-1"));
    expect(response.status).toBe(201);
    const ack = await json(response);
    const next = await call("POST", "/messages", {
      token: alice.token,
      body: plainMessage(conversationId, "parley-1"),
    });
    for (const header of ["Content-Type", "Cache-Control", "X-Content-Type-Options"])
      expect(response.headers.get(header), header).toBe(next.headers.get(header));
    expect((await json(next)).seq).toBe(ack.seq + 1);
    const history = await json(await call("GET", `/conversations/${conversationId}/messages`, { token: bob.token }));
    const stored = history.find((m: MessageResponse) => m.messageId === ack.messageId);
    expect(published).toEqual([stored]);
    expect(ack).toEqual({ messageId: stored.messageId, seq: stored.seq, timestamp: stored.timestamp });
    const charged = await shardD1Of(conversationId)
      .prepare("select bytes from daily_bytes where user_id = ?")
      .bind(alice.userId)
      .first<{ bytes: number }>();
    expect(charged?.bytes).toBe(80);
  });

  it("stores nothing for a token Parley refuses, or for someone outside the conversation", async () => {
    const alice = await registerUser("floor");
    const bob = await registerUser("floor");
    const carol = await registerUser("floor");
    const conversationId = await createConversation(alice, bob);
    const forged = `${alice.token.slice(0, -4)}AAAA`;
    expect((await sendToFloor(forged, plainMessage(conversationId, "x"))).response.status).toBe(401);
    const outsider = await sendToFloor(carol.token, plainMessage(conversationId, "y"));
    expect(outsider.response.status).toBe(409);
    expect(outsider.published).toEqual([]);
  });
});
