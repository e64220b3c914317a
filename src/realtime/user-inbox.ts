import type { ServerFrame } from "../../contract";
import { listMessagesAfterSeq } from "../db/messages";
import { callerIsParticipant } from "../db/participation";
import { goOnline, PRESENCE_RENEW_MS, setInboxPresence } from "../db/presence";
import { databases } from "../db/shards";
import { presentMessage } from "../presenters";
import { messageFrame, type SequencedFrame, type SocketAttachment } from "./frames";
import { SocketHub, typingRefused } from "./socket-hub";
import { deviceTag, sendToAll } from "./sockets";

const GAP_FILL_BATCH = 100;

/** What comes with an inbox event about a conversation. */
export interface InboxEventOptions {
  /** With `conversationCreated`: where that conversation's messages start for this inbox. */
  lastSeq?: number;
  /** When this user's membership began (the one being created, or the one a removal of them ends). */
  joinedAt?: string;
  /** Devices that get a frame of their own (the conversation with their own wrapped key). */
  perDevice?: [deviceId: number, frame: ServerFrame][];
}

/**
 * One object per user (named by the user id): the inbox sockets of all that user's devices. Fed
 * after each commit by the conversation rooms (messages) and by the Worker (membership events), it
 * keeps per-conversation `seq` order with the same Sequencer as the rooms.
 */
export class UserInbox extends SocketHub {
  private get userId(): number {
    return Number(this.ctx.id.name);
  }

  /**
   * A device that connects opens its socket, then catches up over REST: an inbox without sockets
   * has nobody to keep order for, so its ordering state starts afresh with the first device.
   */
  protected override async onAccepted(): Promise<void> {
    if (this.ctx.getWebSockets().length > 1) return;
    this.sequencer.reset();
    // Marked online before the client sees its socket open: nothing committed after that is missed.
    // Each conversation starts after its last seq read in the same batch, so a late earlier frame
    // is held for, not taken as the start.
    const since = await goOnline(databases(this.env), this.userId, this.nextPresenceVersion());
    // Events reach only inboxes with a device connected, so what this inbox remembers of memberships
    // may be stale: start again from what D1 says now.
    const kv = this.ctx.storage.kv;
    for (const prefix of ["left:", "joined:", "invited:"]) for (const [key] of kv.list({ prefix })) kv.delete(key);
    for (const { conversationId, lastSeq, joinedAt, status } of since) {
      this.sequencer.startAt(conversationId, lastSeq);
      kv.put(`joined:${conversationId}`, joinedAt);
      if (status === "invited") kv.put(`invited:${conversationId}`, true);
    }
    await this.armAlarm(Date.now() + PRESENCE_RENEW_MS);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    await super.webSocketClose(ws, code, reason);
    if (this.openSockets(ws) === 0) await this.lastDeviceLeft();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await super.webSocketError(ws);
    if (this.openSockets(ws) === 0) await this.lastDeviceLeft();
  }

  private openSockets(leaving?: WebSocket): number {
    return this.ctx.getWebSockets().filter((ws) => ws !== leaving && ws.readyState === WebSocket.OPEN).length;
  }

  private async lastDeviceLeft(): Promise<void> {
    await this.stop();
    await this.announcePresence(false);
  }

  /** With no device there is nobody to keep order for: nothing held, no alarm (the next device starts afresh). */
  private async stop(): Promise<void> {
    this.sequencer.reset();
    this.forgetGaps();
    await this.ctx.storage.deleteAlarm();
  }

  /** Presence writes carry a version from this object's storage, so a late older write cannot win. */
  private nextPresenceVersion(): number {
    const version = (this.ctx.storage.kv.get<number>("presenceVersion") ?? 0) + 1;
    this.ctx.storage.kv.put("presenceVersion", version);
    return version;
  }

  private async announcePresence(online: boolean): Promise<void> {
    await setInboxPresence(databases(this.env).directory, this.userId, online, this.nextPresenceVersion());
  }

  /** Committed messages from a conversation room, in its order (calls from rooms may interleave). */
  async deliverMessages(frames: SequencedFrame[]): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return; // nobody connected: nothing to send or to keep in order
    let held = false;
    for (const frame of frames) {
      if (this.hasLeft(frame.conversationId)) continue;
      const accepted = this.sequencer.accept(frame);
      for (const ready of accepted.ready) sendToAll(sockets, ready.text);
      held ||= accepted.held;
    }
    await this.scheduleGapFill(held);
  }

  /**
   * A membership event or a new conversation, about `conversationId`. With `conversationCreated`,
   * `lastSeq` is where that conversation's messages start for this inbox. `joinedAt` is when this
   * user's membership began (the one being created, or the one a removal of them ends).
   */
  async deliverEvent(
    frame: ServerFrame,
    conversationId: number,
    { lastSeq = 0, joinedAt, perDevice = [] }: InboxEventOptions = {},
  ): Promise<void> {
    const kv = this.ctx.storage.kv;
    const aboutMe = frame.type === "participantRemoved" && frame.data.userId === this.userId;
    if (frame.type === "conversationCreated") {
      kv.delete(`left:${conversationId}`);
      if (frame.data.status === "invited") kv.put(`invited:${conversationId}`, true);
      else kv.delete(`invited:${conversationId}`);
      if (joinedAt !== undefined) kv.put(`joined:${conversationId}`, joinedAt);
      this.sequencer.startAt(conversationId, lastSeq);
    } else if (this.hasLeft(conversationId)) return;
    // A removal that ends an earlier membership, arriving after the user was added back.
    if (aboutMe && joinedAt !== undefined && joinedAt < (kv.get<string>(`joined:${conversationId}`) ?? "")) return;
    // A device with a frame of its own (its own wrapped key) gets that one instead.
    const own = new Set<WebSocket>();
    for (const [deviceId, deviceFrame] of perDevice) {
      const sockets = this.ctx.getWebSockets(deviceTag(deviceId));
      for (const ws of sockets) own.add(ws);
      sendToAll(sockets, JSON.stringify(deviceFrame));
    }
    sendToAll(
      this.ctx.getWebSockets().filter((ws) => !own.has(ws)),
      JSON.stringify(frame),
    );
    if (aboutMe) {
      // Nothing more of this conversation reaches this inbox, even a call already on its way.
      this.sequencer.forget(conversationId);
      kv.put(`left:${conversationId}`, true);
    }
  }

  // ---- typing: checked against what this inbox holds (memberships and message requests from D1 at
  // its first device's connect, kept up to date by events), never stored, no D1 query ----

  protected override typingTarget(_identity: SocketAttachment, conversationId: number | null): number | ServerFrame {
    if (conversationId === null) return typingRefused("name the conversation: conversationId");
    const kv = this.ctx.storage.kv;
    if (kv.get(`joined:${conversationId}`) === undefined || this.hasLeft(conversationId)) {
      return typingRefused("not a participant of this conversation");
    }
    if (kv.get(`invited:${conversationId}`) === true) return typingRefused("accept the conversation first");
    return conversationId;
  }

  /** To the conversation's room, which relays it to its sockets and the other connected inboxes. */
  protected override async relayTyping(conversationId: number, userId: number): Promise<void> {
    try {
      await this.env.CONVERSATION_ROOM.getByName(String(conversationId)).typing(userId);
    } catch {
      // Typing is best effort: nothing to retry or report.
    }
  }

  /** `typing` from a room (already serialised): to every inbox socket, unless the user left. */
  async deliverTyping(text: string, conversationId: number): Promise<void> {
    if (this.hasLeft(conversationId)) return;
    sendToAll(this.ctx.getWebSockets(), text);
  }

  /** The user accepted the conversation: their inbox sockets may type in it. */
  async accepted(conversationId: number): Promise<void> {
    this.ctx.storage.kv.delete(`invited:${conversationId}`);
  }

  /** A device or identity event: to every inbox socket, or only to those of `deviceIds`. */
  async deliverFrame(frame: ServerFrame, deviceIds?: number[]): Promise<void> {
    const sockets = deviceIds
      ? deviceIds.flatMap((id) => this.ctx.getWebSockets(deviceTag(id)))
      : this.ctx.getWebSockets();
    sendToAll(sockets, JSON.stringify(frame));
  }

  /** Gaps, and the presence lease: renewed while a device is connected, left to expire otherwise. */
  override async alarm(): Promise<void> {
    if (this.openSockets() === 0) return this.stop();
    await this.gapRound();
    await this.announcePresence(true);
    await this.armAlarm(Date.now() + PRESENCE_RENEW_MS);
  }

  protected override async fillGaps(): Promise<boolean> {
    let progressed = false;
    for (const conversationId of this.sequencer.conversationsWithGaps()) {
      const db = databases(this.env).shardOf(conversationId)?.db;
      if (!db || !(await callerIsParticipant(db, conversationId, this.userId))) {
        this.sequencer.forget(conversationId);
        progressed = true;
        continue;
      }
      const last = this.sequencer.lastSeq(conversationId) ?? 0;
      const missing = await listMessagesAfterSeq(db, conversationId, last, GAP_FILL_BATCH);
      await this.deliverMessages(missing.map((m) => messageFrame(presentMessage(m))));
      progressed ||= (this.sequencer.lastSeq(conversationId) ?? 0) > last;
    }
    return progressed;
  }

  protected override deliverFrames(frames: SequencedFrame[]): void {
    const sockets = this.ctx.getWebSockets();
    for (const frame of frames) sendToAll(sockets, frame.text);
  }

  private hasLeft(conversationId: number): boolean {
    return this.ctx.storage.kv.get(`left:${conversationId}`) === true;
  }
}
