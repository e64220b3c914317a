import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { addressKey } from "../../src/middleware/rate-limit";
import {
  call,
  createConversation,
  errorOf,
  history,
  messageBody,
  registerUser,
  registrationBody,
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
        // A different username each time, so the per-username limit is not what bites.
        body: { username: uniqueName("nobody"), password: "wrong password", deviceId: 1 },
      });
      statuses.push(res.status);
    }
    expect(statuses.every((s) => s === 401)).toBe(true);
    const username = uniqueName("limited");
    const limited = await call("POST", "/auth/register", {
      headers,
      body: (await registrationBody(username, "long enough")).body,
    });
    expect(limited.status, "21st request in the window").toBe(429);
    expect(limited.headers.get("Retry-After")).toBe("60");
    expect((await errorOf(limited)).code).toBe("rate_limited");
    const stored = await env.DIRECTORY.prepare("select count(*) as n from users where lower(username) = lower(?)")
      .bind(username)
      .first<{ n: number }>();
    expect(stored?.n).toBe(0);
    const otherIp = await call("POST", "/auth/login", {
      headers: { "CF-Connecting-IP": "198.51.100.7" },
      body: { username: "nobody_here", password: "wrong password", deviceId: 1 },
    });
    expect(otherIp.status).toBe(401);
  }, 30_000);

  it("counts IPv6 clients by their /64: addresses of one /64 share a budget, another /64 has its own", async () => {
    const prefix = `2001:db8:${(Math.floor(Math.random() * 0xfff0) + 1).toString(16)}:7`;
    await withinOneWindow(60);
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) {
      // Every request from a different address of the same /64, written in different forms.
      const ip = i % 2 ? `${prefix}::${(i + 1).toString(16)}` : `${prefix.toUpperCase()}:0:0:0:${i + 1}`;
      const res = await call("POST", "/auth/login", {
        headers: { "CF-Connecting-IP": ip },
        body: { username: uniqueName("v6"), password: "wrong password", deviceId: 1 },
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses[20], "21st from the same /64").toBe(429);
    const neighbour = await call("POST", "/auth/login", {
      headers: { "CF-Connecting-IP": `${prefix.slice(0, -1)}8::1` },
      body: { username: uniqueName("v6"), password: "wrong password", deviceId: 1 },
    });
    expect(neighbour.status, "the next /64 is not limited").toBe(401);
  }, 30_000);

  it("limits logins to 10 a minute per username from any address; other usernames are unaffected", async () => {
    await withinOneWindow(60);
    const user = await registerUser("guessed"); // its own login is the first of the 10
    const attempt = (username: string, password: string, deviceId = user.deviceId) =>
      call("POST", "/auth/login", { body: { username, password, deviceId } }); // a new random address each time
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) {
      // The same account in different letter cases counts as one.
      const name = i % 2 ? user.username.toUpperCase() : user.username;
      statuses.push((await attempt(name, `wrong password ${i}`)).status);
    }
    expect(statuses).toEqual(Array(9).fill(401));
    const limited = await attempt(user.username, user.password);
    expect(limited.status, "even the right password, once limited").toBe(429);
    expect(limited.headers.get("Retry-After")).toBe("60");
    const other = await registerUser("unguessed");
    expect((await attempt(other.username, other.password, other.deviceId)).status).toBe(200);
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

describe("addressKey", () => {
  it.each([
    ["192.0.2.7", "192.0.2.7"],
    ["2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd:12::/64"],
    ["2001:0DB8:ABCD:0012::5", "2001:db8:abcd:12::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["64:ff9b::192.0.2.1", "64:ff9b:0:0::/64"],
  ])("%s is counted as %s", (ip, key) => {
    expect(addressKey(ip)).toBe(key);
  });
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
