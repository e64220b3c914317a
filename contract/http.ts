/**
 * Parley's REST bodies (contract v2), as clients and the server both see them on the wire. JSON,
 * camelCase; binary values are standard base64 with padding; timestamps ISO 8601 UTC with
 * milliseconds; ids positive integers.
 */

// ---- Accounts, devices and sessions ----

/** A device's public keys, signed by the account key (see `DEVICE_SIGNATURE_CONTEXT`). */
export interface NewDevice {
  /** 1 to 64 characters, e.g. "Firefox on laptop". */
  name: string;
  /** X25519 public key (raw, 32 bytes), for key wrapping. */
  identityKey: string;
  /** Ed25519 public key (raw, 32 bytes), for signing wraps and messages. */
  signingKey: string;
  /** Ed25519 signature (64 bytes) by the account key over DEVICE_SIGNATURE_CONTEXT ‖ identityKey ‖ signingKey. */
  signature: string;
}

/** The bytes an account key signs to vouch for a device, before its two raw public keys. */
export const DEVICE_SIGNATURE_CONTEXT = "parley-device-v1";

export interface RegisterRequest {
  username: string;
  password: string;
  /** The account's Ed25519 public key (raw, 32 bytes). */
  accountKey: string;
  device: NewDevice;
}

export interface Registered {
  userId: number;
  username: string;
  deviceId: number;
}

/** Log in on a known device (`deviceId`) or as a new, pending device (`device`, unsigned). */
export type LoginRequest =
  | { username: string; password: string; deviceId: number }
  | { username: string; password: string; device: Omit<NewDevice, "signature"> };

export interface RefreshRequest {
  refreshToken: string;
}

export type DeviceStatus = "active" | "pending";

export interface Session {
  accessToken: string;
  tokenType: "Bearer";
  /** Seconds until the access token expires. */
  expiresIn: number;
  /** Opaque, single use: each refresh returns a new one; reusing an old one ends the session. */
  refreshToken: string;
  refreshExpiresIn: number;
  sessionId: number;
  deviceId: number;
  deviceStatus: DeviceStatus;
}

export interface SessionInfo {
  sessionId: number;
  deviceId: number;
  createdAt: string;
  lastUsedAt: string;
  /** The session of the access token that asked. */
  current: boolean;
}

/** `DELETE /auth/sessions/{id}` (the password unless it is the current session), `DELETE /devices/{id}`, `DELETE /users/me`. */
export interface PasswordProof {
  password?: string;
}

export interface ChangePasswordRequest {
  currentPassword: string;
  newPassword: string;
}

export interface ResetIdentityRequest {
  username: string;
  password: string;
  accountKey: string;
  device: NewDevice;
}

export interface UserSettings {
  readReceipts: boolean;
}

/** `GET /users/me`. */
export interface User {
  userId: number;
  username: string;
  accountKey: string;
  createdAt: string;
  settings: UserSettings;
}

export interface UpdateSettingsRequest {
  readReceipts?: boolean;
}

/** A device as others see it: active devices only, `signature` by the account key. */
export interface Device {
  deviceId: number;
  userId: number;
  identityKey: string;
  signingKey: string;
  /** `null` while the device is pending. */
  signature: string | null;
  createdAt: string;
}

/** `GET /devices`: the caller's own devices, pending and active (never revoked ones). */
export interface OwnDevice extends Device {
  name: string;
  status: DeviceStatus;
  lastSeenAt: string | null;
  current: boolean;
}

/** `GET /users/{username}`. */
export interface PublicUser {
  userId: number;
  username: string;
  accountKey: string;
  devices: Device[];
}

/** One wrapped epoch key, as sent in an epoch commit, a participant add or a device approval. */
export interface WrappedKeyUpload {
  deviceId: number;
  /** 16 to 1,024 bytes: opaque to the server. */
  wrappedKey: string;
  /** Ed25519 signature (64 bytes) by the wrapping device; clients define the signed bytes. */
  signature: string;
}

export interface ApprovalKey {
  conversationId: number;
  epoch: number;
  wrappedKey: string;
  signature: string;
}

export interface ApproveDeviceRequest {
  /** The account key's signature over the new device's keys (see `NewDevice.signature`). */
  signature: string;
  /** Opaque, at most 4 KiB: typically the account key's private half sealed to the new device. */
  provisioning: string;
  /** The current epoch key of every conversation the user takes part in, wrapped for the new device. */
  keys: ApprovalKey[];
}

export interface Provisioning {
  provisioning: string;
}

// ---- Conversations and key epochs ----

export type ParticipantRole = "admin" | "member";
/** `invited`: a message request, not accepted yet (can read, cannot post, add or type). */
export type ParticipantStatus = "member" | "invited";

export interface Participant {
  userId: number;
  username: string;
  joinedAt: string;
  role: ParticipantRole;
  status: ParticipantStatus;
  /** Their read watermark, or `null` when their `settings.readReceipts` is off. */
  lastReadSeq: number | null;
}

/** The current epoch's key wrapped for the caller's device. */
export interface Key {
  epoch: number;
  wrappedKey: string;
  wrappedBy: { userId: number; deviceId: number };
  signature: string;
  createdAt: string;
}

export interface Conversation {
  conversationId: number;
  title: string | null;
  createdAt: string;
  lastMessageId: number | null;
  lastSeq: number;
  /** The caller's own status in it. */
  status: ParticipantStatus;
  epoch: number;
  /** True after a removal, a leave or a revoked device: the next sender commits a new epoch first. */
  rotationNeeded: boolean;
  /** Disappearing messages: each new message expires this long after it is sent; `null`: never. */
  messageTtlSeconds: number | null;
  /** The caller's read watermark (0 until they first mark something read). */
  lastReadSeq: number;
  /**
   * Messages after the caller's watermark (and after their join) that others sent and that are not
   * tombstones (deleted or expired): exact at the moment of the read.
   */
  unreadCount: number;
  participants: Participant[];
  /** `null` when the caller's device has no key for the current epoch. */
  key: Key | null;
}

/** `GET /conversations/{id}/devices`. */
export interface ConversationPage {
  conversations: Conversation[];
  /** Opaque; `null` on the last page. */
  nextCursor: string | null;
}

/** `POST /conversations/{id}/decline`: leave a message request, optionally blocking who added you. */
export interface DeclineRequest {
  block?: boolean;
}

export interface ConversationDevice extends Device {
  username: string;
}

export interface CreateConversationRequest {
  title?: string | null;
  /** 2 to 256 usernames, the creator included, no duplicates. */
  participants: string[];
  /** Epoch 1's key wrapped for every active device of every participant. */
  keys: WrappedKeyUpload[];
}

export interface CommitEpochRequest {
  /** The current epoch + 1. */
  epoch: number;
  keys: WrappedKeyUpload[];
}

export interface EpochCommitted {
  epoch: number;
}

export interface AddParticipantRequest {
  username: string;
  /** Adding is itself an epoch commit: the new epoch, wrapped for every device including the newcomer's. */
  epoch: number;
  keys: WrappedKeyUpload[];
}

/** `POST /conversations/{id}/read`: everything up to `seq` is read (a lower value than the current one changes nothing). */
export interface MarkReadRequest {
  /** 0 to the conversation's `lastSeq`; beyond it: 422. */
  seq: number;
}

/** `PUT /conversations/{id}/settings` (any member). */
export interface ConversationSettingsRequest {
  /** `null` (messages never expire) or 30 to 31,536,000 seconds; applies to messages sent from then on. */
  messageTtlSeconds: number | null;
}

// ---- Messages ----

export type RelationKind = "reply" | "edit" | "reaction";

/**
 * What a message relates to. The server checks only that `messageId` is a message of the same
 * conversation (and, for an edit, one of the sender's own); the reply text, the new text or the
 * emoji are inside the ciphertext like any message body.
 */
export interface RelatesTo {
  messageId: number;
  kind: RelationKind;
}

export interface SendMessageRequest {
  conversationId: number;
  keyEpoch: number;
  nonce: string;
  ciphertext: string;
  authTag: string;
  associatedData?: string | null;
  /** Ed25519 signature (64 bytes) by the sending device. */
  signature: string;
  /** 1 to 64 characters; a retry with the same id answers 200 with the first answer. */
  clientMessageId?: string;
  /**
   * At most 10 distinct attachment ids, each uploaded by the sender to this conversation and not
   * used by another message (422 naming the others). They are linked to the message atomically.
   */
  attachments?: number[];
  /** A reply, an edit (of one's own message) or a reaction; omitted or null for a plain message. */
  relatesTo?: RelatesTo | null;
}

export interface MessageAck {
  messageId: number;
  seq: number;
  timestamp: string;
}

export interface MessageResponse {
  messageId: number;
  seq: number;
  conversationId: number;
  senderId: number;
  senderUsername: string | null;
  senderDeviceId: number;
  keyEpoch: number;
  timestamp: string;
  nonce: string | null;
  ciphertext: string | null;
  authTag: string | null;
  associatedData: string | null;
  signature: string | null;
  clientMessageId: string | null;
  /** The ids of the attachments the message carries, ascending; `[]` when none, `null` on a tombstone. */
  attachments: number[] | null;
  /** Kept on a tombstone. */
  relatesTo: RelatesTo | null;
  /** Set when the conversation had a `messageTtlSeconds` at send; from then on it reads as a tombstone. */
  expiresAt: string | null;
  /** A tombstone (deleted, expired, or its sender's account was deleted): content fields are `null`, `seq` stays. */
  deleted: boolean;
}

// ---- Realtime admission and operations ----

export interface SocketTicket {
  ticket: string;
  /** Seconds: single use, bound to the session that asked. */
  expiresIn: number;
}

/** `GET /users/me/blocked`: the people the caller blocked. */
export interface BlockedUser {
  userId: number;
  username: string;
  blockedAt: string;
}

export interface Health {
  status: "ok";
}

/**
 * Read-your-writes across D1 read replicas: every answer that touched a database carries this
 * header, an opaque token; a client sends the last one it got back on its next request, and that
 * request reads data at least as new as what the earlier answer saw or wrote. Optional: without
 * it, reads may come from any replica (possibly a little behind). docs/api.md, "Bookmarks".
 */
export const BOOKMARK_HEADER = "Parley-Bookmark";
