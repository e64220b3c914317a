import type { MessageResponse, presentConversation } from "../lib/presenters";

export interface MembershipData {
  conversationId: number;
  userId: number;
  username: string;
  by: number;
}

export type MembershipFrame =
  | { type: "participantAdded"; data: MembershipData }
  | { type: "participantRemoved"; data: MembershipData };

export type ServerFrame =
  | { type: "newMessage"; data: MessageResponse }
  | MembershipFrame
  | { type: "conversationCreated"; data: ReturnType<typeof presentConversation> }
  | { type: "error"; error: { code: "bad_request"; message: string } };

/** A message event ready to send: its text is serialised once and sent as is to every socket. */
export interface SequencedFrame {
  conversationId: number;
  seq: number;
  text: string;
  /** Who took part when it was committed (the inboxes to forward to), where the sender knew. */
  recipients?: number[];
}

export const CLOSE = {
  normal: 1000,
  policy: 1008,
  serverError: 1011,
  tryAgainLater: 1013,
  removed: 4003,
} as const;

export const PING = "ping";
export const PONG = "pong";

/** The identity the Worker verified, kept in each socket's attachment so it survives hibernation. */
export interface SocketIdentity {
  userId: number;
  username: string;
  /** Token expiry, seconds since the epoch. */
  exp: number;
  /** Set by the object at accept time: the key of the per-socket frame rate limit. */
  socketId?: string;
}

export function messageFrame(message: MessageResponse, recipients?: number[]): SequencedFrame {
  return {
    conversationId: message.conversationId,
    seq: message.seq,
    text: JSON.stringify({ type: "newMessage", data: message } satisfies ServerFrame),
    ...(recipients ? { recipients } : {}),
  };
}
