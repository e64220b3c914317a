import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { gateD1 } from "../../src/db/gate";

// Whatever the D1 bindings are called (DB today; DIRECTORY and SHARD_n once #15's sharding lands).
// By class name: the pool's service bindings answer any method name, prepare and batch included.
function firstD1(): D1Database {
  const found = Object.values(env as unknown as Record<string, unknown>).find(
    (v) => typeof v === "object" && v !== null && Object.getPrototypeOf(v)?.constructor?.name === "D1Database",
  );
  if (!found) throw new Error("no D1 binding in env");
  return found as D1Database;
}

const SERVICE_MS = 40;
let lanes = 0;
// A fresh lane per test: lanes are per isolate, and the tests of a file share one.
const lane = () => `gate-test-${++lanes}-${Math.random().toString(36).slice(2)}`;

async function elapsed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = Date.now();
  const value = await fn();
  return { ms: Date.now() - t0, value };
}

describe("gateD1", () => {
  it("serialises concurrent statements on one name: n of them take at least n service times", async () => {
    const db = gateD1(firstD1(), lane(), SERVICE_MS);
    const n = 5;
    const { ms, value } = await elapsed(() =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          i % 2 ? db.prepare("select ?1 as v").bind(i).first<{ v: number }>() : db.prepare("select 1").all(),
        ),
      ),
    );
    expect(ms).toBeGreaterThanOrEqual(n * SERVICE_MS - 2);
    expect(value[1]).toEqual({ v: 1 });
  });

  it("runs different names in parallel: one service time each, not their sum", async () => {
    const raw = firstD1();
    const a = gateD1(raw, lane(), 4 * SERVICE_MS);
    const b = gateD1(raw, lane(), 4 * SERVICE_MS);
    const { ms } = await elapsed(() => Promise.all([a.prepare("select 1").run(), b.prepare("select 2").run()]));
    expect(ms).toBeGreaterThanOrEqual(4 * SERVICE_MS - 2);
    // Serialised, they would take 8 service times; in parallel about 4 (generous for a loaded CI core).
    expect(ms).toBeLessThan(7 * SERVICE_MS);
  });

  it("holds a batch of k statements for k service times, as one unit", async () => {
    const db = gateD1(firstD1(), lane(), SERVICE_MS);
    const statements = [1, 2, 3].map((i) => db.prepare("select ?1 as v").bind(i));
    const single = db.prepare("select 4 as v");
    const { ms, value } = await elapsed(() => Promise.all([db.batch<{ v: number }>(statements), single.first("v")]));
    expect(ms).toBeGreaterThanOrEqual(4 * SERVICE_MS - 2);
    expect(value[0].map((r) => r.results)).toEqual([[{ v: 1 }], [{ v: 2 }], [{ v: 3 }]]);
    expect(value[1]).toBe(4);
  });

  it("counts an exec's statements", async () => {
    const db = gateD1(firstD1(), lane(), SERVICE_MS);
    const { ms, value } = await elapsed(() => db.exec("select 1;\nselect 2;\nselect 3;"));
    expect(value.count).toBe(3);
    expect(ms).toBeGreaterThanOrEqual(3 * SERVICE_MS - 2);
  });

  it("passes results, meta, raw rows and errors through unchanged", async () => {
    const raw = firstD1();
    const db = gateD1(raw, lane(), 1);
    const query = "select 7 as a, 'x' as b";
    const [gated, direct] = await Promise.all([db.prepare(query).all(), raw.prepare(query).all()]);
    expect(gated.results).toEqual(direct.results);
    expect(Object.keys(gated.meta).sort()).toEqual(Object.keys(direct.meta).sort());
    expect(gated.success).toBe(true);
    expect(await db.prepare(query).raw()).toEqual(await raw.prepare(query).raw());
    expect(await db.prepare(query).raw({ columnNames: true })).toEqual(
      await raw.prepare(query).raw({ columnNames: true }),
    );
    expect(await db.prepare(query).first("b")).toBe("x");

    const bad = "select * from no_such_table_for_the_gate";
    const directError = await raw
      .prepare(bad)
      .all()
      .catch((e: Error) => e);
    const gatedError = await db
      .prepare(bad)
      .all()
      .catch((e: Error) => e);
    expect(gatedError).toBeInstanceOf(Error);
    expect((gatedError as Error).message).toBe((directError as Error).message);
    const batchError = await db.batch([db.prepare("select 1"), db.prepare(bad)]).catch((e: Error) => e);
    expect((batchError as Error).message).toContain("no_such_table_for_the_gate");
  });

  it("frees the slot after an error", async () => {
    const db = gateD1(firstD1(), lane(), SERVICE_MS);
    const failed = db
      .prepare("select * from no_such_table_for_the_gate")
      .run()
      .catch(() => "failed");
    const { ms, value } = await elapsed(() => db.prepare("select 1 as v").first("v"));
    expect(await failed).toBe("failed");
    expect(value).toBe(1);
    expect(ms).toBeGreaterThanOrEqual(2 * SERVICE_MS - 2);
  });

  it("gates a session's statements and batches, and keeps its bookmark", async () => {
    const db = gateD1(firstD1(), lane(), SERVICE_MS);
    const session = db.withSession("first-primary");
    const { ms, value } = await elapsed(() =>
      Promise.all([
        session.prepare("select 1 as v").first("v"),
        session.batch([session.prepare("select 2 as v"), session.prepare("select 3 as v")]),
      ]),
    );
    expect(value[0]).toBe(1);
    expect(value[1].map((r) => r.results)).toEqual([[{ v: 2 }], [{ v: 3 }]]);
    expect(ms).toBeGreaterThanOrEqual(3 * SERVICE_MS - 2);
    const bookmark = session.getBookmark();
    expect(bookmark === null || typeof bookmark === "string").toBe(true);
  });

  it("is the binding itself when the service time is 0", () => {
    const raw = firstD1();
    expect(gateD1(raw, lane(), 0)).toBe(raw);
  });
});
