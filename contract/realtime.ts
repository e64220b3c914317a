import type { Conversation, MessageResponse } from "./http.ts";

/** A participant joined or left; `by` is the user who did it (the same user for a leave). */
export interface MembershipChange {
  conversationId: number;
  userId: number;
  username: string;
  by: number;
}

export interface EpochChange {
  conversationId: number;
  epoch: number;
  by: { userId: number; deviceId: number };
}

export interface DeviceChange {
  userId: number;
  username: string;
  deviceId: number;
}

export interface IdentityChange {
  userId: number;
  username: string;
}

/** `messageDeleted`: the message is a tombstone from now on (its `seq` stays). */
export interface MessageDeleted {
  conversationId: number;
  messageId: number;
  seq: number;
}

/** `settingsChanged`: `by` is the member who changed it. */
export interface SettingsChange {
  conversationId: number;
  messageTtlSeconds: number | null;
  by: number;
}

/** `read`: `userId` has read everything up to `seq` (only for users who share read receipts; always to their own devices). */
export interface ReadReceipt {
  conversationId: number;
  userId: number;
  seq: number;
}

/** `typing`: relayed, never stored; a client shows it for 3 to 5 seconds unless it is repeated. */
export interface Typing {
  conversationId: number;
  userId: number;
}

/**
 * The error frame: a client frame the server does not understand (`bad_request`), or `typing` from
 * an invited participant or about a conversation the socket cannot speak for (`forbidden`). The
 * socket stays open.
 */
export interface ErrorFrame {
  type: "error";
  error: { code: "bad_request" | "forbidden"; message: string };
}

/** One JSON text frame the server sends on a conversation or inbox socket. */
export type ServerFrame =
  | { type: "newMessage"; data: MessageResponse }
  | { type: "participantAdded"; data: MembershipChange }
  | { type: "participantRemoved"; data: MembershipChange }
  | { type: "epochChanged"; data: EpochChange }
  | { type: "messageDeleted"; data: MessageDeleted }
  | { type: "settingsChanged"; data: SettingsChange }
  | { type: "read"; data: ReadReceipt }
  | { type: "typing"; data: Typing }
  /** Inbox sockets only, from here down. */
  | { type: "conversationCreated"; data: Conversation }
  | { type: "deviceAdded"; data: DeviceChange }
  | { type: "deviceRemoved"; data: DeviceChange }
  | { type: "identityChanged"; data: IdentityChange }
  | { type: "deviceApproved"; data: { deviceId: number } }
  | { type: "devicePending"; data: { deviceId: number; name: string } }
  | ErrorFrame;

export type ServerFrameType = ServerFrame["type"];

/** A client frame answered with `PONG` without waking the server's object. */
export const PING = "ping";
export const PONG = "pong";

/**
 * The one JSON frame a client sends: "I am typing". On a conversation socket `conversationId` may
 * be left out; on the inbox socket it is required. At most one is relayed per 2 seconds per socket
 * (the rest are dropped silently); an invited participant gets the error frame.
 */
export interface TypingFrame {
  type: "typing";
  conversationId?: number;
}

/** Everything a client may send: `PING` (text) or a JSON `TypingFrame`. */
export type ClientFrame = typeof PING | TypingFrame;

/** At most one `typing` is relayed per socket in this many milliseconds. */
export const TYPING_INTERVAL_MS = 2_000;

/** WebSocket close codes the server uses, and what a client should do about each. */
export const CLOSE = {
  /** Normal closure: reconnect if still wanted. */
  normal: 1000,
  /** Refused by policy (see `CLOSE_REASON`): do not reconnect blindly. */
  policy: 1008,
  /** Server error: reconnect with backoff. */
  serverError: 1011,
  /** Too many sockets on this conversation or inbox: reconnect later. */
  tryAgainLater: 1013,
  /** The session ended or the device was revoked: stop; log in again. */
  sessionEnded: 4001,
  /** The user was removed from the conversation: stop. */
  removed: 4003,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/**
 * The exact reason text sent with each close. A 1008 for a credential (`invalidToken`,
 * `tokenExpired`) is worth one retry with a fresh token; the others are final.
 */
export const CLOSE_REASON = {
  invalidToken: "invalid or expired token",
  tokenExpired: "token expired",
  notParticipant: "not a participant of this conversation",
  deviceNotLinked: "device not linked yet",
  tooManyFrames: "too many frames",
  tooManySockets: "too many sockets: try again later",
  sessionEnded: "session ended",
  removed: "removed from the conversation",
  socketError: "socket error",
} as const;

export type CloseReason = (typeof CLOSE_REASON)[keyof typeof CLOSE_REASON];

/** Close reasons that a fresh access token can cure. */
export const CREDENTIAL_CLOSE_REASONS: readonly string[] = [CLOSE_REASON.invalidToken, CLOSE_REASON.tokenExpired];
