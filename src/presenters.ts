import type * as Wire from "../contract";
import type { ConversationView } from "./db/conversations";
import type { ConversationDeviceRow } from "./db/coverage";
import type { DeviceRow } from "./db/devices";
import type { KeyRow } from "./db/keys";
import type { MessageRow } from "./db/messages";
import type { UserRow } from "./db/users";
import { encodeBase64 } from "./lib/base64";

/** Database rows to the contract's wire types: the only place a response body is shaped. */
export function presentUser(user: UserRow): Wire.User {
  return {
    userId: user.id,
    username: user.username,
    accountKey: encodeBase64(user.accountKey),
    createdAt: user.createdAt,
    settings: { readReceipts: user.readReceipts },
  };
}

export function presentDevice(device: DeviceRow | (ConversationDeviceRow & { id?: number })): Wire.Device {
  return {
    deviceId: "deviceId" in device ? device.deviceId : device.id,
    userId: device.userId,
    identityKey: encodeBase64(device.identityKey),
    signingKey: encodeBase64(device.signingKey),
    signature: device.signature ? encodeBase64(device.signature) : null,
    createdAt: device.createdAt,
  };
}

export function presentOwnDevice(device: DeviceRow, currentDeviceId: number): Wire.OwnDevice {
  return {
    ...presentDevice(device),
    name: device.name,
    status: device.status === "active" ? "active" : "pending",
    lastSeenAt: device.lastSeenAt,
    current: device.id === currentDeviceId,
  };
}

export function presentConversationDevice(device: ConversationDeviceRow): Wire.ConversationDevice {
  return { ...presentDevice(device), username: device.username };
}

export function presentPublicUser(user: UserRow, devices: DeviceRow[]): Wire.PublicUser {
  return {
    userId: user.id,
    username: user.username,
    accountKey: encodeBase64(user.accountKey),
    devices: devices.map(presentDevice),
  };
}

export function presentKey(key: KeyRow): Wire.Key {
  return {
    epoch: key.epoch,
    wrappedKey: encodeBase64(key.wrappedKey),
    wrappedBy: { userId: key.wrappedByUser, deviceId: key.wrappedByDevice },
    signature: encodeBase64(key.signature),
    createdAt: key.createdAt,
  };
}

export function presentConversation(conversation: ConversationView): Wire.Conversation {
  return {
    conversationId: conversation.id,
    title: conversation.title,
    createdAt: conversation.createdAt,
    lastMessageId: conversation.lastMessageId,
    lastSeq: conversation.lastSeq,
    status: conversation.status,
    epoch: conversation.epoch,
    rotationNeeded: conversation.rotationNeeded,
    messageTtlSeconds: conversation.messageTtlSeconds,
    lastReadSeq: conversation.lastReadSeq,
    unreadCount: conversation.unreadCount,
    participants: conversation.participants,
    key: conversation.key ? presentKey(conversation.key) : null,
  };
}

const optional = (bytes: Uint8Array | null) => (bytes ? encodeBase64(bytes) : null);

/**
 * A message, or its tombstone (content erased, `seq` kept): deleted, or expired at `now` (from
 * `expiresAt` on, every read is a tombstone, whether or not the sweep has erased the bytes yet).
 */
export function presentMessage(message: MessageRow, now = new Date().toISOString()): Wire.MessageResponse {
  const expired = message.expiresAt !== null && message.expiresAt <= now;
  const content = !message.deleted && !expired;
  return {
    messageId: message.id,
    seq: message.seq,
    conversationId: message.conversationId,
    senderId: message.senderId,
    senderUsername: message.senderUsername,
    senderDeviceId: message.senderDeviceId,
    keyEpoch: message.keyEpoch,
    timestamp: message.createdAt,
    nonce: content ? optional(message.nonce) : null,
    ciphertext: content ? optional(message.ciphertext) : null,
    authTag: content ? optional(message.authTag) : null,
    associatedData: content ? optional(message.associatedData) : null,
    signature: content ? optional(message.signature) : null,
    clientMessageId: message.clientMessageId,
    attachments: content ? message.attachments : null,
    relatesTo:
      message.relatesToId !== null && message.relatesToKind !== null
        ? { messageId: message.relatesToId, kind: message.relatesToKind }
        : null,
    expiresAt: message.expiresAt,
    deleted: !content,
  };
}
