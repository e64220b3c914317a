// The mid-run removal: an admin removes one member of the largest conversation while the others keep
// sending. The removed member first stops sending there (its messages in flight are answered), catches
// up, and is then removed; the next sender meets 409 (rotation required) and commits a new epoch
// without the removed device. From then on the removed member expects nothing more of it.
import type { Client } from "./client.ts";
import { type RunContext, SoakError, sleep } from "./context.ts";
import { expect } from "./http.ts";
import type { Population } from "./load.ts";

export async function removeMidRun(ctx: RunContext, { members, conversationIds }: Population): Promise<void> {
  const k = members.reduce((best, set, i) => (set.size > members[best]!.size ? i : best), 0);
  if (members[k]!.size < 3) {
    ctx.log("no conversation has three members: no removal this run");
    return;
  }
  const id = conversationIds[k]!;
  const [admin, ...others] = [...members[k]!] as [Client, ...Client[]];
  const victim = ctx.pick(others);
  const conv = victim.convs.get(id)!;
  conv.leaving = true;
  // Nothing of the victim's may still be in flight there: the removal would refuse it (403).
  while ([...ctx.sentMessages.values()].some((r) => r.client === victim && r.conversationId === id && !r.settled)) {
    ctx.checkDeadline();
    await sleep(20);
  }
  await victim.catchUp(conv, "rest");
  const caughtUpTo = conv.contiguousSeq;
  const before = expect(await admin.authed("GET", `/conversations/${id}`), 200, "conversation before removal");
  const res = await admin.authed("DELETE", `/conversations/${id}/participants/${victim.username}`);
  if (res.status !== 204) {
    // A retry after a lost answer: the first DELETE went through if the victim is gone.
    const now = expect(await admin.authed("GET", `/conversations/${id}`), 200, "conversation after removal");
    if (now.participants.some((p: { userId: number }) => p.userId === victim.userId))
      throw new SoakError(`removing client ${victim.index}: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const after = expect(await admin.authed("GET", `/conversations/${id}`), 200, "conversation after removal");
  conv.removed = { seqBefore: before.lastSeq, seqAfter: after.lastSeq, caughtUpTo };
  ctx.removal = {
    conversationId: id,
    client: victim.index,
    deviceId: victim.deviceId,
    seqBefore: before.lastSeq,
    seqAfter: after.lastSeq,
    epochAtRemoval: before.epoch,
  };
  // Cut off at once: history and keys are refused.
  for (const path of [`/conversations/${id}/messages`, `/conversations/${id}/keys`]) {
    const refused = await victim.authed("GET", path);
    if (refused.status !== 403)
      ctx.anomaly("removedMemberNotCutOff", { client: victim.index, path, status: refused.status });
  }
  ctx.log(
    `removed c${victim.index} from conversation ${id} (lastSeq ${before.lastSeq}→${after.lastSeq}, epoch ${before.epoch}, rotation ${after.rotationNeeded ? "pending" : "done"})`,
  );
}
