import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  b64,
  call,
  createConversation,
  errorOf,
  history,
  messageBody,
  randomBytes,
  registerUser,
  sleep,
  uniqueName,
} from "../helpers/api";
import { conversationSocket } from "../helpers/sockets";

/**
 * Local rate limiting counts in fixed windows aligned to the wall clock; a test that must stay
 * inside one window starts right after a boundary, so it cannot straddle two.
 */
async function withinOneWindow(periodSeconds: number, neededMs = 5000): Promise<void> {
  const periodMs = periodSeconds * 1000;
  const left = periodMs - (Date.now() % periodMs);
  if (left < neededMs) await sleep(left + 20);
}

describe("rate limits", () => {
  it("limits register and login together to 20 a minute per client IP, storing nothing when limited", async () => {
    const ip = `192.0.2.${Math.floor(Math.random() * 250) + 1}`;
    const headers = { "CF-Connecting-IP": ip };
    await withinOneWindow(60);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await call("POST", "/auth/login", {
        headers,
        body: { username: "nobody_here", password: "wrong password" },
      });
      statuses.push(res.status);
    }
    expect(statuses.every((s) => s === 401)).toBe(true);
    const username = uniqueName("limited");
    const limited = await call("POST", "/auth/register", {
      headers,
      body: { username, password: "long enough", publicKey: b64(randomBytes(32)) },
    });
    expect(limited.status, "21st request in the window").toBe(429);
    expect(limited.headers.get("Retry-After")).toBe("60");
    expect((await errorOf(limited)).code).toBe("rate_limited");
    const stored = await env.DB.prepare("select count(*) as n from users where lower(username) = lower(?)")
      .bind(username)
      .first<{ n: number }>();
    expect(stored?.n).toBe(0);
    const otherIp = await call("POST", "/auth/login", {
      headers: { "CF-Connecting-IP": "198.51.100.7" },
      body: { username: "nobody_here", password: "wrong password" },
    });
    expect(otherIp.status).toBe(401);
  }, 30_000);

  it("limits POST /messages to 60 in 10 s per user; a limited message is not stored", async () => {
    const alice = await registerUser("rl");
    const bob = await registerUser("rl");
    const id = await createConversation(alice, bob);
    await withinOneWindow(10);
    const results = await Promise.all(
      Array.from({ length: 61 }, (_, i) =>
        call("POST", "/messages", { token: alice.token, body: messageBody(id, { clientMessageId: `m${i}` }) }),
      ),
    );
    const statuses = results.map((r) => r.status);
    const limited = results.filter((r) => r.status === 429);
    expect(statuses.filter((s) => s === 201).length + limited.length).toBe(61);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.headers.get("Retry-After")).toBe("10");
    expect((await errorOf(limited[0]!)).code).toBe("rate_limited");
    const stored = await history(alice, id, "limit=100");
    expect(stored.length).toBe(61 - limited.length);
    expect(stored.map((m) => m.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: stored.length }, (_, i) => i + 1),
    );
    const fromBob = await call("POST", "/messages", { token: bob.token, body: messageBody(id) });
    expect(fromBob.status).toBe(201);
  }, 30_000);
});

describe("WebSocket frame flood", () => {
  it("closes a socket that sends more than 20 frames in 10 s with 1008, while ping stays free", async () => {
    const alice = await registerUser("rl");
    const bob = await registerUser("rl");
    const id = await createConversation(alice, bob);
    await withinOneWindow(10);
    const socket = await conversationSocket(id, alice.token);
    for (let i = 0; i < 30; i++) socket.ws.send("ping"); // auto-answered, not counted
    await socket.waitFor((f) => f.filter((x) => x === "pong").length === 30);
    for (let i = 0; i < 25; i++) socket.ws.send(`junk ${i}`);
    const closed = await socket.closed;
    expect(closed).toEqual({ code: 1008, reason: "too many frames" });
    expect(socket.frames.filter((x) => x?.type === "error")).toHaveLength(20);
  }, 30_000);
});
