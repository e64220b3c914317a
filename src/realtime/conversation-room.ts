import { CLOSE, CLOSE_REASON, type MessageResponse, type ServerFrame } from "../../contract";
import { createDb } from "../db/client";
import { callerIsParticipant } from "../db/conversations";
import { listMessagesAfterSeq } from "../db/messages";
import { onlineInboxes } from "../db/presence";
import { presentMessage } from "../presenters";
import { type MembershipFrame, messageFrame, type SequencedFrame, type SocketAttachment } from "./frames";
import { SocketHub } from "./socket-hub";
import { LAST_SEQ_HEADER, refuseSocket, safeClose, sendToAll, userTag } from "./sockets";

const GAP_FILL_BATCH = 100;

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

  /**
   * The Worker checks participation, then forwards: a removal can commit and close the user's
   * sockets in between. So the room remembers each removal (with a number that grows with every
   * removal) and, for a user it saw removed, asks D1 again; a removal during that read refuses too.
   */
  protected override async refusal({ userId }: SocketAttachment): Promise<Response | undefined> {
    const removal = this.ctx.storage.kv.get<number>(removedKey(userId));
    if (removal === undefined) return undefined;
    const stillIn = await callerIsParticipant(createDb(this.env.DB), this.conversationId, userId);
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
    await this.scheduleGapFill(held);
  }

  /** A conversation event that is not a message (e.g. `epochChanged`): to every socket as is. */
  async broadcast(frame: ServerFrame): Promise<void> {
    sendToAll(this.ctx.getWebSockets(), JSON.stringify(frame));
  }

  async membership(event: MembershipEvent): Promise<void> {
    const kv = this.ctx.storage.kv;
    const { userId } = event.frame.data;
    const joined = kv.get<string>(joinedKey(userId)) ?? "";
    // A removal of an earlier membership, retried after the user was added back: not about now.
    if (event.removedUserId !== undefined && event.joinedAt !== undefined && event.joinedAt < joined) return;
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
  }

  protected override async fillGaps(): Promise<boolean> {
    const last = this.sequencer.lastSeq(this.conversationId) ?? 0;
    const missing = await listMessagesAfterSeq(createDb(this.env.DB), this.conversationId, last, GAP_FILL_BATCH);
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
      if (!recipients && !current) current = await onlineInboxes(createDb(this.env.DB), this.conversationId);
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
