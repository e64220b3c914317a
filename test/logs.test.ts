import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../src/app";
import { b64, call, createConversation, json, messageBody, randomBytes, registerUser } from "./helpers/api";
import { failingD1 } from "./helpers/faults";
import { conversationSocket, inboxSocket, messagesOf, openSocket } from "./helpers/sockets";

const METHODS = ["log", "info", "warn", "error", "debug"] as const;

describe("logs", () => {
  it("never contain a token, a password, a key, ciphertext or SQL, through a whole scenario with failures", async () => {
    const lines: string[] = [];
    const spies = METHODS.map((m) =>
      vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
        lines.push(
          args
            .map((a) =>
              a instanceof Error ? `${a.message} ${a.stack}` : typeof a === "string" ? a : JSON.stringify(a),
            )
            .join(" "),
        );
      }),
    );
    const secrets: string[] = [];
    try {
      const alice = await registerUser("log");
      const bob = await registerUser("log");
      secrets.push(alice.password, alice.token, bob.token, alice.publicKey, bob.publicKey);
      await call("POST", "/auth/login", { body: { username: alice.username, password: "wrong-password-123" } });
      secrets.push("wrong-password-123");
      const keys = [b64(randomBytes(40)), b64(randomBytes(40))];
      secrets.push(...keys);
      const created = await call("POST", "/conversations", {
        token: alice.token,
        body: {
          participants: [
            { username: alice.username, encryptedKey: keys[0] },
            { username: bob.username, encryptedKey: keys[1] },
          ],
        },
      });
      const id = (await json(created)).conversationId;
      const [socket] = await Promise.all([conversationSocket(id, bob.token), inboxSocket(alice.token)]);
      for (let i = 0; i < 3; i++) {
        const associatedData = b64(randomBytes(24));
        const body = messageBody(id, { associatedData, clientMessageId: `log-${i}` });
        secrets.push(body.ciphertext, body.nonce, associatedData);
        await call("POST", "/messages", { token: alice.token, body });
      }
      await socket!.waitFor((f) => messagesOf(f).length === 3);
      await call("POST", "/messages", { token: alice.token, body: { ...messageBody(id), ciphertext: "not base64!" } });
      await call("POST", "/messages", {
        token: alice.token,
        body: "{broken json",
        headers: { "Content-Type": "application/json" },
      });
      const forged = `${alice.token.slice(0, -4)}AAAA`;
      secrets.push(forged);
      await call("GET", "/users/me", { token: forged });
      const refused = await openSocket(`conversationId=${id}&token=${forged}`);
      await refused.closed;
      const outsider = await registerUser("log");
      secrets.push(outsider.token);
      const notIn = await openSocket(`conversationId=${id}&token=${outsider.token}`);
      await notIn.closed;
      await call("DELETE", `/conversations/${id}/participants/${bob.username}`, { token: alice.token });
      await createConversation(alice, outsider);
      // A database failure mid-write: Drizzle's error carries the SQL and its parameters.
      const failing = messageBody(id);
      secrets.push(failing.ciphertext);
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request("http://parley.test/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${alice.token}` },
          body: JSON.stringify(failing),
        }),
        { ...env, DB: failingD1(env.DB, 1).db },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      expect(res.status).toBe(500);
      // A single statement failing: here Drizzle wraps the error with the SQL and parameters.
      const read = await app.fetch(
        new Request(`http://parley.test/conversations/${id}/messages`, {
          headers: { Authorization: `Bearer ${alice.token}` },
        }),
        { ...env, DB: failingD1(env.DB, 2).db }, // the page query, after the membership check
        createExecutionContext(),
      );
      expect(read.status).toBe(500);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const all = lines.join("\n");
    expect(all).toContain("unhandled error"); // the capture works: the failure above was logged
    for (const secret of secrets) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/); // no JWT-looking text at all
    expect(all).not.toMatch(/insert into|select .+ from|update .+ set|params:/i); // no SQL or its parameters
  });
});
