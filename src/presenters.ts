import type * as Wire from "../contract";
import type { ConversationView } from "./db/conversations";
import type { StoredMessage } from "./db/messages";
import type { UserRow } from "./db/users";
import { encodeBase64 } from "./lib/base64";

/** Database rows to the contract's wire types: the only place a response body is shaped. */
export function presentUser(user: UserRow): Wire.User {
  return {
    userId: user.id,
    username: user.username,
    publicKey: encodeBase64(user.publicKey),
    createdAt: user.createdAt,
  };
}

export function presentPublicUser(user: UserRow): Wire.PublicUser {
  return { userId: user.id, username: user.username, publicKey: encodeBase64(user.publicKey) };
}

export function presentConversation(conversation: ConversationView): Wire.Conversation {
  return {
    conversationId: conversation.id,
    title: conversation.title,
    createdAt: conversation.createdAt,
    lastMessageId: conversation.lastMessageId,
    participants: conversation.participants,
    encryptedKey: encodeBase64(conversation.encryptedKey),
  };
}

export function presentMessage(message: StoredMessage): Wire.MessageResponse {
  return {
    messageId: message.id,
    seq: message.seq,
    conversationId: message.conversationId,
    senderId: message.senderId,
    senderUsername: message.senderUsername,
    timestamp: message.createdAt,
    nonce: encodeBase64(message.nonce),
    ciphertext: encodeBase64(message.ciphertext),
    authTag: encodeBase64(message.authTag),
    associatedData: message.associatedData ? encodeBase64(message.associatedData) : null,
    clientMessageId: message.clientMessageId,
  };
}
