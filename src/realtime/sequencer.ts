import type { SequencedFrame } from "./frames";

const pad = (n: number) => String(n).padStart(16, "0");

/**
 * Puts the `newMessage` frames of each conversation in `seq` order, each once, in a Durable Object's
 * own storage (so it survives eviction and hibernation).
 *
 * Why: D1 commits in `seq` order, but the RPC calls that carry the committed messages to an object
 * can arrive in any order (concurrent POSTs, concurrent forwards). The object keeps, per
 * conversation, the last `seq` it delivered. A frame at `last + 1` goes out at once, followed by any
 * held frames it unblocks; a later one is held in storage until the gap is filled, and the owner sets
 * an alarm that fetches the missing messages from D1 if the gap is still open a moment later (the
 * message was committed, only its call is late or lost). A frame at or below `last` was already
 * delivered and is dropped. Everything here is synchronous storage, so a call cannot interleave
 * with another one in the middle of it.
 */
export class Sequencer {
  constructor(private readonly kv: SyncKvStorage) {}

  lastSeq(conversationId: number): number | undefined {
    return this.kv.get<number>(`last:${conversationId}`);
  }

  /** Sets where delivery starts if nothing was delivered yet (e.g. the seq a new socket saw in D1). */
  startAt(conversationId: number, seq: number): void {
    if (this.lastSeq(conversationId) === undefined) this.kv.put(`last:${conversationId}`, seq);
  }

  /** Accepts one frame: the frames now deliverable, in order, and whether this one was held. */
  accept(frame: SequencedFrame): { ready: SequencedFrame[]; held: boolean } {
    const { conversationId, seq } = frame;
    const last = this.lastSeq(conversationId) ?? seq - 1;
    if (seq <= last) return { ready: [], held: false };
    if (seq > last + 1) {
      this.kv.put(`held:${conversationId}:${pad(seq)}`, frame);
      return { ready: [], held: true };
    }
    const ready = [frame];
    let next = seq + 1;
    for (let held = this.takeHeld(conversationId, next); held; held = this.takeHeld(conversationId, ++next)) {
      ready.push(held);
    }
    this.kv.put(`last:${conversationId}`, next - 1);
    return { ready, held: false };
  }

  /** Conversations with frames held behind a gap. */
  conversationsWithGaps(): number[] {
    const ids = new Set<number>();
    for (const [key] of this.kv.list({ prefix: "held:" })) ids.add(Number(key.split(":")[1]));
    return [...ids];
  }

  /** Gives up on a conversation's gaps: its held frames, in order; delivery goes on after the last. */
  releaseHeld(conversationId: number): SequencedFrame[] {
    const held = [...this.kv.list<SequencedFrame>({ prefix: `held:${conversationId}:` })];
    for (const [key] of held) this.kv.delete(key);
    const frames = held.map(([, frame]) => frame);
    const last = frames.at(-1);
    if (last) this.kv.put(`last:${conversationId}`, last.seq);
    return frames;
  }

  /** Forgets a conversation (the user left it): nothing held for it is delivered any more. */
  forget(conversationId: number): void {
    this.kv.delete(`last:${conversationId}`);
    for (const [key] of this.kv.list({ prefix: `held:${conversationId}:` })) this.kv.delete(key);
  }

  /** Forgets every conversation. */
  reset(): void {
    for (const prefix of ["last:", "held:"]) {
      for (const [key] of this.kv.list({ prefix })) this.kv.delete(key);
    }
  }

  private takeHeld(conversationId: number, seq: number): SequencedFrame | undefined {
    const key = `held:${conversationId}:${pad(seq)}`;
    const held = this.kv.get<SequencedFrame>(key);
    if (held) this.kv.delete(key);
    return held;
  }
}
