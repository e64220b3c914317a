/**
 * The conversation side of `ParleyClient`: listing, creating, membership (requests, roles, leaving,
 * blocking) and key rotation. Every participant's account key is checked against its pin and every
 * device verified before a key is wrapped for it.
 */
import type { BlockedUser, Conversation, ConversationPage, DeclineRequest } from "../contract/index.ts";
import { UNBOUND_CONVERSATION } from "./crypto/wrap.ts";
import { ParleyError } from "./http.ts";
import { LinkingClient } from "./linking.ts";
import type { VerifiedDeviceRecord } from "./store.ts";

export class ConversationsClient extends LinkingClient {
  /** The current epoch as last seen, per conversation (dropped on any 409 or `epochChanged`). */
  protected readonly current = new Map<number, { epoch: number; rotationNeeded: boolean }>();

  // ---- conversations --------------------------------------------------------------------------

  /** One page of the caller's conversations, most recent activity first. */
  listConversations(query: { limit?: number; cursor?: string } = {}): Promise<ConversationPage> {
    const qs = new URLSearchParams();
    if (query.limit !== undefined) qs.set("limit", String(query.limit));
    if (query.cursor !== undefined) qs.set("cursor", query.cursor);
    return this.http.request("GET", `/conversations${qs.size ? `?${qs}` : ""}`);
  }

  async getConversation(conversationId: number): Promise<Conversation> {
    const conversation = await this.http.request<Conversation>("GET", `/conversations/${conversationId}`);
    this.current.set(conversationId, { epoch: conversation.epoch, rotationNeeded: conversation.rotationNeeded });
    return conversation;
  }

  /**
   * Creates a conversation with `usernames` (the caller is added). Every participant's account key
   * is checked against its pin (pinned on first use), every device verified, and epoch 1's fresh
   * key wrapped for each device (the caller's other devices included).
   */
  async createConversation(usernames: string[], options: { title?: string } = {}): Promise<Conversation> {
    const self = this.activeDevice();
    const names = new Map<string, string>([[self.username.toLowerCase(), self.username]]);
    for (const u of usernames) if (!names.has(u.toLowerCase())) names.set(u.toLowerCase(), u);
    if (names.size < 2) throw new TypeError("name at least one other participant");
    const devices: VerifiedDeviceRecord[] = [];
    for (const username of names.values()) devices.push(...(await this.directory.user(username)).devices);
    // Epoch 1 is wrapped before the conversation has an id: bound to conversation 0 (docs/client.md).
    const conversation = await this.keyring.commitNew(
      UNBOUND_CONVERSATION,
      1,
      devices,
      (keys) =>
        this.http.request<Conversation>("POST", "/conversations", {
          body: { ...(options.title ? { title: options.title } : {}), participants: [...names.values()], keys },
        }),
      (created) => created.conversationId,
    );
    const { conversationId } = conversation;
    this.current.set(conversationId, { epoch: 1, rotationNeeded: false });
    // Epoch 1 is bound to conversation 0; epoch 2, bound to the real id, is committed at once, so
    // every message is sent under a bound key and nobody has to rotate before their first reply.
    // A failure here is not fatal: the conversation exists and the next send rotates if needed.
    try {
      const epoch = await this.keyring.rotate(conversationId, 1, devices);
      this.current.set(conversationId, { epoch, rotationNeeded: false });
      return await this.getConversation(conversationId);
    } catch (err) {
      this.reportError(err);
      return conversation;
    }
  }

  /**
   * Adds a participant: a new epoch whose key is wrapped for every current device and the
   * newcomer's (who never receives an earlier epoch's key).
   */
  async addParticipant(conversationId: number, username: string): Promise<Conversation> {
    for (let attempt = 0; ; attempt++) {
      const { epoch } = await this.getConversation(conversationId);
      const devices = [
        ...(await this.directory.conversationDevices(conversationId)),
        ...(await this.directory.user(username)).devices,
      ];
      try {
        const conversation = await this.keyring.commitNew(conversationId, epoch + 1, devices, (keys) =>
          this.http.request<Conversation>("POST", `/conversations/${conversationId}/participants`, {
            body: { username, epoch: epoch + 1, keys },
          }),
        );
        this.current.set(conversationId, { epoch: epoch + 1, rotationNeeded: false });
        return conversation;
      } catch (err) {
        // Another epoch was committed meanwhile (409) or the device set changed (422): once more.
        if (!(err instanceof ParleyError && (err.status === 409 || err.status === 422)) || attempt > 0) throw err;
      }
    }
  }

  /**
   * Removes a participant (admins only; anyone may remove themselves, see `leaveConversation`).
   * The next send rotates the key.
   */
  async removeParticipant(conversationId: number, username: string): Promise<void> {
    await this.http.request<void>(
      "DELETE",
      `/conversations/${conversationId}/participants/${encodeURIComponent(username)}`,
    );
    this.current.delete(conversationId);
  }

  /** Leaves a conversation (the last admin's role passes to the longest-standing member). */
  leaveConversation(conversationId: number): Promise<void> {
    return this.removeParticipant(conversationId, this.activeDevice().username);
  }

  // ---- consent and blocking -------------------------------------------------------------------

  /**
   * Accepts a message request (`status: "invited"`): from then on the caller may post, add and
   * rotate, and is added directly (not invited) by the same people later. Accepting twice: 200.
   */
  async acceptConversation(conversationId: number): Promise<Conversation> {
    const conversation = await this.http.request<Conversation>("POST", `/conversations/${conversationId}/accept`);
    this.current.set(conversationId, { epoch: conversation.epoch, rotationNeeded: conversation.rotationNeeded });
    return conversation;
  }

  /** Declines a message request: the caller leaves it; `block` also blocks whoever added them. */
  async declineConversation(conversationId: number, options: { block?: boolean } = {}): Promise<void> {
    const body: DeclineRequest = options.block ? { block: true } : {};
    await this.http.request<void>("POST", `/conversations/${conversationId}/decline`, { body });
    this.current.delete(conversationId);
  }

  /** Blocks a user: they can no longer start a conversation with the caller or add them (403). */
  block(username: string): Promise<void> {
    return this.http.request<void>("PUT", `/users/me/blocked/${encodeURIComponent(username)}`);
  }

  unblock(username: string): Promise<void> {
    return this.http.request<void>("DELETE", `/users/me/blocked/${encodeURIComponent(username)}`);
  }

  /** The people the caller blocked. */
  blocked(): Promise<BlockedUser[]> {
    return this.http.request<BlockedUser[]>("GET", "/users/me/blocked");
  }

  /** Commits a new epoch now (normally done by `sendMessage` when the server asks for it). */
  async rotateKey(conversationId: number): Promise<number> {
    const { epoch } = await this.getConversation(conversationId);
    const now = await this.keyring.rotate(conversationId, epoch);
    this.current.set(conversationId, { epoch: now, rotationNeeded: false });
    return now;
  }
}
