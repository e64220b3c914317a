import type { MembershipChange, MessageResponse, ServerFrame } from "../../contract";
import type { Identity } from "../lib/jwt";

export type MembershipFrame =
  | { type: "participantAdded"; data: MembershipChange }
  | { type: "participantRemoved"; data: MembershipChange };

/** A message event ready to send: its text is serialised once and sent as is to every socket. */
export interface SequencedFrame {
  conversationId: number;
  seq: number;
  text: string;
  /** Who took part when it was committed (the inboxes to forward to), where the sender knew. */
  recipients?: number[];
}

/** What each socket's attachment holds, so it survives hibernation: the verified identity (user, device, session, expiry). */
export interface SocketAttachment extends Identity {
  /** Set by the object at accept time: the key of the per-socket frame rate limit. */
  socketId?: string;
  /** Conversation sockets: the user was an invited participant at admission (cleared on `accept`). */
  invited?: boolean;
  /** When this socket last had a `typing` relayed (ms): at most one per TYPING_INTERVAL_MS. */
  typingAt?: number;
}

export function messageFrame(message: MessageResponse, recipients?: number[]): SequencedFrame {
  return {
    conversationId: message.conversationId,
    seq: message.seq,
    text: JSON.stringify({ type: "newMessage", data: message } satisfies ServerFrame),
    ...(recipients ? { recipients } : {}),
  };
}
