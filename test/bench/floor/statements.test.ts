import { drizzle } from "drizzle-orm/d1";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  DELIVERY,
  INSERT_MESSAGE,
  type Param,
  RESULT,
  type SlotValues,
  type Statement,
} from "../../../bench/floor/statements";
import { deliveryTargets } from "../../../src/db/delivery";
import { insertMessage } from "../../../src/db/message-insert";
import { shardOfId } from "../../../src/db/shards";

const NOW = new Date("2031-02-03T04:05:06.789Z");

/** Distinct values for every slot, so that each recorded parameter names the one it came from. */
const VALUES: SlotValues = {
  // Shard 7's: every id of a shard is its number modulo 4096 (src/db/shard-ids.ts).
  conversationId: 3 * 4096 + 7,
  shard: 7,
  userId: 1001,
  deviceId: 2002,
  sessionId: 3003,
  keyEpoch: 55,
  nonce: new Uint8Array(12).fill(1),
  ciphertext: new Uint8Array(37).fill(2),
  authTag: new Uint8Array(16).fill(3),
  associatedData: new Uint8Array(5).fill(4),
  signature: new Uint8Array(64).fill(5),
  clientMessageId: "client-message-id",
  createdAt: NOW.toISOString(),
  day: NOW.toISOString().slice(0, 10),
  bytes: 37,
  budget: 777_777,
  nowMs: NOW.getTime(),
  participantIds: JSON.stringify([1001, 1002]),
};

/**
 * A D1 binding that records what it is asked to run, answering with empty results: a batch's
 * statements (`prepare(sql).bind(...params)`, handed over together) and single statements run alone.
 */
function recordingD1() {
  const batches: { sql: string; params: unknown[] }[][] = [];
  const empty = { results: [], success: true, meta: {} };
  const d1 = {
    prepare: (sql: string) => ({
      bind: (...params: unknown[]) => ({
        sql,
        params,
        all: async () => {
          batches.push([{ sql, params }]);
          return empty;
        },
      }),
    }),
    batch: async (statements: { sql: string; params: unknown[] }[]) => {
      batches.push(statements.map(({ sql, params }) => ({ sql, params })));
      return statements.map(() => empty);
    },
  };
  return { d1: d1 as unknown as D1Database, batches };
}

/** A recorded parameter as the slot whose value it is, or as a constant. */
function toParam(value: unknown): Param {
  const slots = Object.entries(VALUES).filter(([, v]) => v === value);
  if (slots.length > 1) throw new Error(`ambiguous parameter ${String(value)}: ${slots.map(([k]) => k).join(", ")}`);
  if (slots[0]) return slots[0][0] as Param;
  if (value === null || typeof value === "string" || typeof value === "number") return { literal: value };
  throw new Error(`unexpected parameter ${String(value)}`);
}

/** What Parley's insertMessage sends for a plain message, in the floor's terms. */
async function recordParley(): Promise<Statement[]> {
  const { d1, batches } = recordingD1();
  const { userId, deviceId, sessionId, conversationId, keyEpoch, nonce, ciphertext, authTag } = VALUES;
  const { associatedData, signature, clientMessageId, budget } = VALUES;
  await insertMessage(
    drizzle(d1),
    shardOfId(conversationId),
    { conversationId, keyEpoch, nonce, ciphertext, authTag, associatedData, signature, clientMessageId },
    { userId, deviceId, sessionId, exp: VALUES.nowMs / 1000 + 900 },
    { budget, now: NOW },
  );
  expect(batches).toHaveLength(1);
  return batches[0]!.map(({ sql, params }) => ({ sql, params: params.map(toParam) }));
}

/** The directory read Parley's delivery sends after the answer, in the floor's terms. */
async function recordParleyDelivery(): Promise<Statement[]> {
  const { d1, batches } = recordingD1();
  await deliveryTargets(drizzle(d1), JSON.parse(VALUES.participantIds), VALUES.deviceId);
  expect(batches).toHaveLength(1);
  return batches[0]!.map(({ sql, params }) => ({ sql, params: params.map(toParam) }));
}

/** Each difference between the floor's statements and Parley's, in words (none: they agree). */
function drift(floor: Statement[], parley: Statement[]): string[] {
  const out: string[] = [];
  if (floor.length !== parley.length) out.push(`Parley sends ${parley.length} statements, the floor ${floor.length}`);
  const show = (p: Param | undefined) => JSON.stringify(p ?? "(none)");
  for (let i = 0; i < Math.max(floor.length, parley.length); i++) {
    const f = floor[i];
    const p = parley[i];
    if (!f || !p) continue;
    if (f.sql !== p.sql) {
      let at = 0;
      while (f.sql[at] === p.sql[at]) at++;
      const near = (text: string) => `«${text.slice(Math.max(0, at - 40), at + 60).replaceAll("\n", "\\n")}»`;
      out.push(`statement ${i}: SQL differs at character ${at}: Parley ${near(p.sql)}, floor ${near(f.sql)}`);
    }
    for (let k = 0; k < Math.max(f.params.length, p.params.length); k++) {
      if (JSON.stringify(f.params[k]) !== JSON.stringify(p.params[k]))
        out.push(`statement ${i}, parameter ${k}: Parley ${show(p.params[k])}, floor ${show(f.params[k])}`);
    }
  }
  return out;
}

/** The declaration to paste into bench/floor/statements.ts. */
function render(statements: Statement[]): string {
  const sql = (text: string) =>
    `\`${text.replaceAll("\\", "\\\\").replaceAll("`", "\\`").replaceAll("${", "\\${").replaceAll("\n", "\\n")}\``;
  const param = (p: Param) => (typeof p === "string" ? JSON.stringify(p) : `{ literal: ${JSON.stringify(p.literal)} }`);
  const body = statements.map(
    (s) => `  {\n    sql: ${sql(s.sql)},\n    params: [${s.params.map(param).join(", ")}],\n  },\n`,
  );
  return `export const INSERT_MESSAGE: Statement[] = [\n${body.join("")}];\n`;
}

describe("the write floor's statements", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(NOW);
  });
  afterEach(() => vi.useRealTimers());

  it("are exactly those Parley's insertMessage sends", async () => {
    const parley = await recordParley();
    const differences = drift(INSERT_MESSAGE, parley);
    if (differences.length > 0) console.log(`bench/floor/statements.ts, the new declaration:\n\n${render(parley)}`);
    expect(differences, "bench/floor/statements.ts against insertMessage").toEqual([]);
  });

  it("and the delivery's directory read is exactly Parley's", async () => {
    const parley = await recordParleyDelivery();
    const differences = drift([DELIVERY], parley);
    if (differences.length > 0) console.log(`bench/floor/statements.ts, the new DELIVERY:\n\n${render(parley)}`);
    expect(differences, "bench/floor/statements.ts against deliveryTargets").toEqual([]);
  });

  it("read their answers where RESULT says", () => {
    expect(INSERT_MESSAGE[RESULT.inserted]?.sql).toMatch(/^insert into "messages" .* returning /s);
    expect(INSERT_MESSAGE[RESULT.participants]?.sql).toMatch(/^select "user_id" from "participants" /s);
  });
});
