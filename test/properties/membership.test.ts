import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addParticipant,
  call,
  createInvitation,
  getConversation,
  registerUsers,
  rotate,
  sendMessage,
  type TestUser,
} from "../helpers/api";
import { shardD1Of } from "../helpers/databases";

type Op =
  | { kind: "add"; actor: number; target: number }
  | { kind: "remove"; actor: number; target: number }
  | { kind: "leave"; actor: number }
  | { kind: "accept"; actor: number }
  | { kind: "decline"; actor: number; block: boolean }
  | { kind: "block"; actor: number; target: number }
  | { kind: "post"; actor: number };

const who = fc.integer({ min: 0, max: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("add" as const), actor: who, target: who }),
  fc.record({ kind: fc.constant("remove" as const), actor: who, target: who }),
  fc.record({ kind: fc.constant("leave" as const), actor: who }),
  fc.record({ kind: fc.constant("accept" as const), actor: who }),
  fc.record({ kind: fc.constant("decline" as const), actor: who, block: fc.boolean() }),
  fc.record({ kind: fc.constant("block" as const), actor: who, target: who }),
  fc.record({ kind: fc.constant("post" as const), actor: who }),
);

interface Row {
  user_id: number;
  role: string;
  status: string;
}
const rowsOf = async (id: number) =>
  (
    await shardD1Of(id)
      .prepare("select user_id, role, status from participants where conversation_id = ?")
      .bind(id)
      .all<Row>()
  ).results;
const messageCount = async (id: number) =>
  (await shardD1Of(id)
    .prepare("select count(*) as n from messages where conversation_id = ?")
    .bind(id)
    .first<{ n: number }>())!.n;

async function apply(users: TestUser[], id: number, step: Op): Promise<void> {
  const actor = users[step.actor]!;
  switch (step.kind) {
    case "add":
      await addParticipant(actor, id, { username: users[step.target]!.username }).catch(() => undefined);
      return;
    case "remove":
      await call("DELETE", `/conversations/${id}/participants/${users[step.target]!.username}`, { token: actor.token });
      return;
    case "leave":
      await call("DELETE", `/conversations/${id}/participants/${actor.username}`, { token: actor.token });
      return;
    case "accept":
      await call("POST", `/conversations/${id}/accept`, { token: actor.token });
      return;
    case "decline":
      await call("POST", `/conversations/${id}/decline`, { token: actor.token, body: { block: step.block } });
      return;
    case "block":
      await call("PUT", `/users/me/blocked/${users[step.target]!.username}`, { token: actor.token });
      return;
    case "post": {
      const mine = (await rowsOf(id)).find((r) => r.user_id === actor.userId);
      const before = await messageCount(id);
      if (mine?.status === "member") {
        const { rotationNeeded, epoch } = await getConversation(actor, id);
        const keyEpoch = rotationNeeded ? await rotate(actor, id) : epoch;
        expect((await sendMessage(actor, id, { keyEpoch })).status, "a member posts").toBe(201);
        expect(await messageCount(id)).toBe(before + 1);
      } else {
        const refused = await sendMessage(actor, id, { keyEpoch: 1 });
        expect(refused.status, `a ${mine ? "invited participant" : "non-member"} cannot post`).toBe(403);
        expect(await messageCount(id)).toBe(before);
      }
    }
  }
}

describe("membership, generated", () => {
  it("any sequence of add, remove, leave, accept, decline and block keeps an admin and lets only members post", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
        const users = await registerUsers("prop", "prop", "prop", "prop");
        const id = await createInvitation(users[0]!, users[1]!);
        for (const step of ops) {
          await apply(users, id, step);
          const rows = await rowsOf(id);
          if (rows.length > 0) expect(rows.filter((r) => r.role === "admin").length, "an admin remains").toBe(1);
          for (const r of rows) expect(["member", "invited"]).toContain(r.status);
        }
      }),
      { numRuns: 20 },
    );
  }, 120_000);
});
