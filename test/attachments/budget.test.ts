import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { createDb } from "../../src/db/client";
import { chargeDailyBytes, secondsToNextUtcMidnight } from "../../src/db/daily-bytes";
import { createConversation, errorOf, randomBytes, registerUsers } from "../helpers/api";
import { shardD1s } from "../helpers/databases";

/** The counters are kept per shard (each shard counts what is stored in it): any shard will do here. */
const counters = () => shardD1s()[0]!;

let lastUser = 5_000_000;
const nextUser = () => ++lastUser;

describe("chargeDailyBytes", () => {
  it("adds up to the budget and refuses past it, with the seconds to the next UTC midnight", async () => {
    const db = createDb(counters());
    const userId = nextUser();
    const now = new Date("2026-11-25T23:59:30.250Z");
    expect(await chargeDailyBytes(db, userId, 600, 1000, now)).toEqual({ ok: true, used: 600 });
    expect(await chargeDailyBytes(db, userId, 400, 1000, now)).toEqual({ ok: true, used: 1000 });
    expect(await chargeDailyBytes(db, userId, 1, 1000, now)).toEqual({ ok: false, retryAfterSeconds: 30 });
    // A new UTC day starts again from zero.
    const tomorrow = new Date("2026-11-26T00:00:01.000Z");
    expect(await chargeDailyBytes(db, userId, 1000, 1000, tomorrow)).toEqual({ ok: true, used: 1000 });
    expect(await chargeDailyBytes(db, userId, 1001, 1000, tomorrow)).toMatchObject({ ok: false });
    expect(secondsToNextUtcMidnight(new Date("2026-11-25T00:00:00.000Z"))).toBe(86_400);
  });

  it("is atomic: concurrent charges never pass the budget together", async () => {
    const db = createDb(counters());
    const userId = nextUser();
    const results = await Promise.all(Array.from({ length: 20 }, () => chargeDailyBytes(db, userId, 100, 1000)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    const stored = await counters()
      .prepare("select sum(bytes) as n from daily_bytes where user_id = ?")
      .bind(userId)
      .first("n");
    expect(stored).toBe(1000);
  });
});

describe("uploads and the daily byte budget", () => {
  it("charges each upload by Content-Length and answers 429 with Retry-After past the budget", async () => {
    const [alice, bob] = await registerUsers("bud", "bud");
    const conversationId = await createConversation(alice, bob);
    const small = { ...env, DAILY_BYTES_PER_USER: "1500" };
    const post = (size: number) =>
      app.fetch(
        new Request(`http://parley.test/attachments?conversationId=${conversationId}`, {
          method: "POST",
          body: randomBytes(size),
          headers: {
            Authorization: `Bearer ${alice.token}`,
            "Content-Type": "application/octet-stream",
            "Content-Length": String(size),
          },
        }),
        small,
        createExecutionContext(),
      );
    expect((await post(1000)).status).toBe(201);
    const refused = await post(501);
    expect(refused.status).toBe(429);
    expect((await errorOf(refused)).code).toBe("rate_limited");
    const retryAfter = Number(refused.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect((await post(500)).status).toBe(201);
  });
});
