import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../src/app";
import {
  approveBody,
  b64,
  call,
  createConversation,
  json,
  loginPendingDevice,
  messageBody,
  randomBytes,
  registerUser,
  registrationBody,
  rotate,
  uniqueName,
  wrapFor,
} from "./helpers/api";
import { shardBindingOf, shardD1Of } from "./helpers/databases";
import { failingD1 } from "./helpers/faults";
import { conversationSocket, inboxSocket, messagesOf, openSocket } from "./helpers/sockets";

const METHODS = ["log", "info", "warn", "error", "debug"] as const;

describe("logs", () => {
  it("never contain a token, refresh token, ticket, password, key, wrapped key, signature, ciphertext or SQL, through a whole v2 scenario with failures", async () => {
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
      secrets.push(alice.password, alice.token, bob.token, alice.refreshToken, bob.refreshToken);
      secrets.push(alice.accountKey, bob.accountKey, alice.device.identityKey, alice.device.signingKey);
      secrets.push(bob.device.identityKey, bob.device.signingKey);
      await call("POST", "/auth/login", {
        body: { username: alice.username, password: "wrong-password-123", deviceId: alice.deviceId },
      });
      secrets.push("wrong-password-123");
      // A registration whose device signature does not verify (422), and one with a malformed key.
      const refusedRegistration = await registrationBody(uniqueName("log"), "another password 1");
      const badSignature = b64(randomBytes(64));
      secrets.push(
        refusedRegistration.body.accountKey,
        refusedRegistration.body.device.identityKey,
        refusedRegistration.body.device.signature,
        badSignature,
      );
      await call("POST", "/auth/register", {
        body: { ...refusedRegistration.body, device: { ...refusedRegistration.body.device, signature: badSignature } },
      });
      await call("POST", "/auth/register", {
        body: { ...refusedRegistration.body, accountKey: `${refusedRegistration.body.accountKey}!` },
      });
      // Refresh: once properly, then the old token again (reuse ends the session), then garbage.
      const rotated = await json(await call("POST", "/auth/refresh", { body: { refreshToken: bob.refreshToken } }));
      secrets.push(rotated.accessToken, rotated.refreshToken);
      await call("POST", "/auth/refresh", { body: { refreshToken: bob.refreshToken } });
      await call("POST", "/auth/refresh", { body: { refreshToken: "not-a-real-refresh-token-0123456789abcdef" } });
      secrets.push("not-a-real-refresh-token-0123456789abcdef");
      const bobAgain = await json(
        await call("POST", "/auth/login", {
          body: { username: bob.username, password: bob.password, deviceId: bob.deviceId },
        }),
      );
      secrets.push(bobAgain.accessToken, bobAgain.refreshToken);
      bob.token = bobAgain.accessToken;
      // Epoch 1's wrapped keys and their signatures.
      const keys = await Promise.all([alice.deviceId, bob.deviceId].map((d) => wrapFor(alice, d)));
      secrets.push(...keys.flatMap((k) => [k.wrappedKey, k.signature]));
      const created = await call("POST", "/conversations", {
        token: alice.token,
        body: { participants: [alice.username, bob.username], keys },
      });
      const id = (await json(created)).conversationId;
      // A new device: pending login, approval (signature, provisioning envelope, wrapped keys), a failed approval first.
      const phone = await loginPendingDevice(alice, "phone");
      secrets.push(phone.token, phone.refreshToken, phone.device.identityKey, phone.device.signingKey);
      const approval = await approveBody(alice, phone);
      secrets.push(
        approval.signature,
        approval.provisioning,
        ...approval.keys.flatMap((k) => [k.wrappedKey, k.signature]),
      );
      await call("POST", `/devices/${phone.deviceId}/approve`, {
        token: alice.token,
        body: { ...approval, signature: b64(randomBytes(64)) },
      });
      expect(
        (await call("POST", `/devices/${phone.deviceId}/approve`, { token: alice.token, body: approval })).status,
      ).toBe(200);
      // Tickets: one spent on a socket, one replayed, one never valid.
      const ticket = (await json(await call("POST", "/ws/tickets", { token: alice.token }))).ticket as string;
      secrets.push(ticket);
      const ticketSocket = await openSocket(`ticket=${encodeURIComponent(ticket)}`);
      const replayed = await openSocket(`ticket=${encodeURIComponent(ticket)}`);
      await replayed.closed;
      ticketSocket.ws.close(1000);
      await openSocket("ticket=made-up-ticket-0123456789").then((s) => s.closed);
      secrets.push("made-up-ticket-0123456789");
      // A stale epoch commit and a rotation: more wrapped keys.
      const stale = await Promise.all([alice.deviceId, bob.deviceId].map((d) => wrapFor(alice, d)));
      secrets.push(...stale.flatMap((k) => [k.wrappedKey, k.signature]));
      await call("POST", `/conversations/${id}/epochs`, { token: alice.token, body: { epoch: 5, keys: stale } });
      const [socket] = await Promise.all([conversationSocket(id, bob.token), inboxSocket(alice.token)]);
      for (let i = 0; i < 3; i++) {
        const associatedData = b64(randomBytes(24));
        const body = messageBody(id, { associatedData, clientMessageId: `log-${i}` });
        secrets.push(body.ciphertext, body.nonce, body.signature, associatedData);
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
      // A message under the old epoch while rotation is required (409), then the rotation.
      const refusedMessage = messageBody(id);
      secrets.push(refusedMessage.ciphertext, refusedMessage.signature);
      await call("POST", "/messages", { token: alice.token, body: refusedMessage });
      await rotate(alice, id);
      await createConversation(alice, outsider);
      // Session ends: revoking the phone (wrong password first), logout, password change, account deletion.
      await call("DELETE", `/devices/${phone.deviceId}`, {
        token: alice.token,
        body: { password: "wrong-password-456" },
      });
      secrets.push("wrong-password-456");
      expect(
        (await call("DELETE", `/devices/${phone.deviceId}`, { token: alice.token, body: { password: alice.password } }))
          .status,
      ).toBe(204);
      await call("GET", "/users/me", { token: phone.token });
      await call("POST", "/auth/password", {
        token: outsider.token,
        body: { currentPassword: outsider.password, newPassword: "a brand new password 789" },
      });
      secrets.push("a brand new password 789");
      expect((await call("DELETE", "/users/me", { token: bob.token, body: { password: bob.password } })).status).toBe(
        204,
      );
      await call("POST", "/auth/logout", { token: bob.token });
      // A database failure mid-write: Drizzle's error carries the SQL and its parameters.
      const failing = messageBody(id, { keyEpoch: 2 });
      secrets.push(failing.ciphertext, failing.signature);
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request("http://parley.test/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${alice.token}` },
          body: JSON.stringify(failing),
        }),
        { ...env, [shardBindingOf(id)]: failingD1(shardD1Of(id), 1).db },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      expect(res.status).toBe(500);
      // A single statement failing: here Drizzle wraps the error with the SQL and parameters.
      const read = await app.fetch(
        new Request(`http://parley.test/conversations/${id}/messages`, {
          headers: { Authorization: `Bearer ${alice.token}` },
        }),
        { ...env, [shardBindingOf(id)]: failingD1(shardD1Of(id), 2).db }, // the page query, after the membership check
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
