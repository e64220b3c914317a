import { CLOSE, CLOSE_REASON, type MessageResponse, type ServerFrame } from "../../contract";
import { nextExpiry } from "../db/message-erasure";
import { listMessagesAfterSeq } from "../db/messages";
import { callerIsParticipant, participantIds } from "../db/participation";
import { onlineUsers } from "../db/presence";
import { databases } from "../db/shards";
import { erasePass, SWEEP_BATCH } from "../jobs/expiry";
import { presentMessage } from "../presenters";
import { type MembershipFrame, messageFrame, type SequencedFrame, type SocketAttachment } from "./frames";
import { SocketHub, typingRefused } from "./socket-hub";
import { identityOf, LAST_SEQ_HEADER, refuseSocket, safeClose, sendToAll, updateIdentity, userTag } from "./sockets";

const GAP_FILL_BATCH = 100;

/** Retry a failed expiry sweep this much later. */
const SWEEP_RETRY_MS = 10_000;
/** When the next expiry sweep is due (ms), while one is. */
const SWEEP_AT = "sweep:at";
/** Participants whose inbox had a device connected at the last publish (or who typed from one since). */
const INBOXES = "typing:inboxes";

const removedKey = (userId: number) => `removed:${userId}`;
const joinedKey = (userId: number) => `joined:${userId}`;

export interface MembershipEvent {
  frame: MembershipFrame;
  /** Set for a removal: that user's sockets get the event, then are closed with 4003. */
  removedUserId?: number;
  /** When the membership added, or ended by the removal, began: tells a late (retried) removal. */
  joinedAt?: string;
}

/**
 * One object per conversation (named by its id). It holds the conversation's sockets, broadcasts
 * each committed message in `seq` order, then forwards it to the participants' inboxes.
 */
export class ConversationRoom extends SocketHub {
  private get conversationId(): number {
    return Number(this.ctx.id.name);
  }

  /** The shard holding this conversation (the Worker only ever names objects after ids a shard holds). */
  private shard() {
    const shard = databases(this.env).shardOf(this.conversationId);
    if (!shard) throw new Error(`no shard holds conversation ${this.conversationId}`);
    return shard.db;
  }

  /** Participants whose inbox has a device connected: where this conversation's messages are forwarded. */
  private async onlineParticipants(): Promise<number[]> {
    const online = await onlineUsers(
      databases(this.env).directory,
      await participantIds(this.shard(), this.conversationId),
    );
    return [...online];
  }

  /**
   * The Worker checks participation, then forwards: a removal can commit and close the user's
   * sockets in between. So the room remembers each removal (with a number that grows with every
   * removal) and, for a user it saw removed, asks D1 again; a removal during that read refuses too.
   */
  protected override async refusal({ userId }: SocketAttachment): Promise<Response | undefined> {
    const removal = this.ctx.storage.kv.get<number>(removedKey(userId));
    if (removal === undefined) return undefined;
    const stillIn = await callerIsParticipant(this.shard(), this.conversationId, userId);
    if (stillIn && this.ctx.storage.kv.get<number>(removedKey(userId)) === removal) return undefined;
    return refuseSocket(CLOSE.removed, CLOSE_REASON.removed);
  }

  protected override async onAccepted(request: Request): Promise<void> {
    // Delivery starts after the last message committed when the first socket was admitted.
    this.sequencer.startAt(this.conversationId, Number(request.headers.get(LAST_SEQ_HEADER)) || 0);
  }

  /**
   * Called after a message is committed to D1, with the participants whose inbox had a device
   * connected at that moment. Calls may arrive out of order; see Sequencer.
   */
  async publish(message: MessageResponse, recipients?: number[]): Promise<void> {
    // A room that never saw a socket starts before seq 1: a late first message is held, not lost.
    this.sequencer.startAt(this.conversationId, 0);
    const { ready, held } = this.sequencer.accept(messageFrame(message, recipients));
    this.deliver(ready);
    if (recipients) this.rememberInboxes(recipients);
    await this.scheduleGapFill(held);
    if (message.expiresAt !== null) await this.scheduleSweep(Date.parse(message.expiresAt));
  }

  /**
   * A conversation event that is not a message (e.g. `epochChanged`): to every socket as is, or
   * only to `onlyUserId`'s (a `read` of someone who does not share receipts).
   */
  async broadcast(frame: ServerFrame, onlyUserId?: number): Promise<void> {
    const sockets = onlyUserId === undefined ? this.ctx.getWebSockets() : this.ctx.getWebSockets(userTag(onlyUserId));
    sendToAll(sockets, JSON.stringify(frame));
  }

  /** `userId` accepted the conversation: their sockets may type from now on. */
  async accepted(userId: number): Promise<void> {
    for (const ws of this.ctx.getWebSockets(userTag(userId))) updateIdentity(ws, { invited: false });
  }

  // ---- typing: relayed from what this object holds, never stored, no D1 query ----

  protected override typingTarget(identity: SocketAttachment, conversationId: number | null): number | ServerFrame {
    if (conversationId !== null && conversationId !== this.conversationId) {
      return typingRefused("this socket is for another conversation");
    }
    if (identity.invited) return typingRefused("accept the conversation first");
    return this.conversationId;
  }

  protected override async relayTyping(_conversationId: number, userId: number): Promise<void> {
    await this.typing(userId);
  }

  /**
   * `typing` of `userId` (from one of this room's sockets, or forwarded by their inbox, which checked
   * it): to every socket here but theirs, and to the inboxes that were connected at the last publish
   * (kept in this object's storage; see docs/realtime.md for what that misses).
   */
  async typing(userId: number): Promise<void> {
    const text = JSON.stringify({
      type: "typing",
      data: { conversationId: this.conversationId, userId },
    } satisfies ServerFrame);
    sendToAll(
      this.ctx.getWebSockets().filter((ws) => identityOf(ws).userId !== userId),
      text,
    );
    const inboxes = this.knownInboxes();
    // A user typing from their inbox has one connected: remember it for the others' typing too.
    if (!inboxes.includes(userId)) this.rememberInboxes([...inboxes, userId]);
    const others = inboxes.filter((id) => id !== userId);
    if (others.length === 0) return;
    this.ctx.waitUntil(
      Promise.allSettled(
        others.map((id) => this.env.USER_INBOX.getByName(String(id)).deliverTyping(text, this.conversationId)),
      ).then(() => undefined),
    );
  }

  private knownInboxes(): number[] {
    return this.ctx.storage.kv.get<number[]>(INBOXES) ?? [];
  }

  private rememberInboxes(userIds: number[]): void {
    const sorted = [...new Set(userIds)].sort((a, b) => a - b);
    const current = this.knownInboxes();
    if (sorted.length === current.length && sorted.every((id, i) => id === current[i])) return;
    this.ctx.storage.kv.put(INBOXES, sorted);
  }

  async membership(event: MembershipEvent): Promise<void> {
    const kv = this.ctx.storage.kv;
    const { userId } = event.frame.data;
    const joined = kv.get<string>(joinedKey(userId)) ?? "";
    // A removal of an earlier membership, retried after the user was added back: not about now.
    if (event.removedUserId !== undefined && event.joinedAt !== undefined && event.joinedAt < joined) return;
    if (event.removedUserId !== undefined) {
      this.rememberInboxes(this.knownInboxes().filter((id) => id !== event.removedUserId));
    }
    if (event.frame.type === "participantAdded") {
      kv.delete(removedKey(userId));
      if (event.joinedAt !== undefined) kv.put(joinedKey(userId), event.joinedAt);
    }
    sendToAll(this.ctx.getWebSockets(), JSON.stringify(event.frame));
    if (event.removedUserId === undefined) return;
    const removals = (kv.get<number>("removals") ?? 0) + 1;
    kv.put("removals", removals);
    kv.put(removedKey(event.removedUserId), removals);
    for (const ws of this.ctx.getWebSockets(userTag(event.removedUserId))) {
      safeClose(ws, CLOSE.removed, CLOSE_REASON.removed);
    }
  }

  override async alarm(): Promise<void> {
    await this.gapRound();
    await this.sweepIfDue();
  }

  // ---- the expiry sweep (disappearing messages): this conversation's alarm ----

  /** Runs the sweep at `at` (ms) unless one is due sooner. */
  private async scheduleSweep(at: number): Promise<void> {
    const current = this.ctx.storage.kv.get<number>(SWEEP_AT);
    if (current !== undefined && current <= at) return;
    this.ctx.storage.kv.put(SWEEP_AT, at);
    await this.armAlarm(at);
  }

  /**
   * One bounded pass (SWEEP_BATCH messages), then the alarm again: at once if the pass was full, else
   * at the next expiry D1 knows of. Each alarm is its own invocation, so a backlog cannot hit a limit.
   */
  async sweepIfDue(now = Date.now()): Promise<number> {
    const kv = this.ctx.storage.kv;
    const at = kv.get<number>(SWEEP_AT);
    if (at === undefined) return 0;
    if (at > now) {
      await this.armAlarm(at);
      return 0;
    }
    kv.delete(SWEEP_AT);
    const db = this.shard();
    let next: number | null;
    let erased = 0;
    try {
      erased = await erasePass(
        { db, bucket: this.env.ATTACHMENTS },
        { now: new Date(now), conversationId: this.conversationId },
      );
      const later = erased < SWEEP_BATCH ? await nextExpiry(db, this.conversationId) : null;
      next = erased >= SWEEP_BATCH ? now : later === null ? null : Date.parse(later);
    } catch (err) {
      console.error(
        `expiry sweep failed (conversation ${this.conversationId}): ${err instanceof Error ? err.name : "error"}`,
      );
      next = now + SWEEP_RETRY_MS;
    }
    if (next !== null) await this.scheduleSweep(next);
    return erased;
  }

  protected override async fillGaps(): Promise<boolean> {
    const last = this.sequencer.lastSeq(this.conversationId) ?? 0;
    const missing = await listMessagesAfterSeq(this.shard(), this.conversationId, last, GAP_FILL_BATCH);
    let delivered = 0;
    for (const message of missing) {
      const { ready } = this.sequencer.accept(messageFrame(presentMessage(message)));
      this.deliver(ready);
      delivered += ready.length;
    }
    return delivered > 0;
  }

  protected override deliverFrames(frames: SequencedFrame[]): void {
    this.deliver(frames);
  }

  private deliver(frames: SequencedFrame[]): void {
    if (frames.length === 0) return;
    const sockets = this.ctx.getWebSockets();
    for (const frame of frames) sendToAll(sockets, frame.text);
    this.ctx.waitUntil(this.forwardToInboxes(frames));
  }

  /**
   * Inbox fan-out, off the POST's path: one call per connected inbox, each failing alone. The
   * recipients come with the message (read in the commit's own batch); only frames fetched from
   * D1 to fill a gap need a query here.
   */
  private async forwardToInboxes(frames: SequencedFrame[]): Promise<void> {
    const byRecipient = new Map<number, SequencedFrame[]>();
    let current: number[] | undefined;
    for (const { recipients, ...frame } of frames) {
      if (!recipients && !current) current = await this.onlineParticipants();
      const members = recipients ?? current ?? [];
      for (const userId of members) {
        const list = byRecipient.get(userId) ?? [];
        list.push(frame);
        byRecipient.set(userId, list);
      }
    }
    const results = await Promise.allSettled(
      [...byRecipient].map(([userId, list]) => this.env.USER_INBOX.getByName(String(userId)).deliverMessages(list)),
    );
    const failed = results.filter((r) => r.status === "rejected").length;
    if (failed > 0) {
      console.error(
        `inbox forward: ${failed} of ${results.length} inboxes failed (conversation ${this.conversationId})`,
      );
    }
  }
}
