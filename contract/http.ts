/**
 * Parley's REST bodies, as clients and the server both see them on the wire. JSON, camelCase;
 * binary values are standard base64 with padding; timestamps ISO 8601 UTC with milliseconds.
 */

export interface RegisterRequest {
  username: string;
  password: string;
  /** The account's X25519 public key, base64 (32 to 512 bytes decoded). */
  publicKey: string;
}

export interface Registered {
  userId: number;
  username: string;
}

export interface LoginRequest {
  username: string;
  password: string;
}

export interface AccessToken {
  accessToken: string;
  tokenType: "Bearer";
  /** Seconds until the token expires. */
  expiresIn: number;
}

/** `GET /users/me`, `PUT /users/me/public-key`. */
export interface User {
  userId: number;
  username: string;
  publicKey: string;
  createdAt: string;
}

/** `GET /users/{username}`. */
export interface PublicUser {
  userId: number;
  username: string;
  publicKey: string;
}

export interface UpdatePublicKeyRequest {
  publicKey: string;
}

export interface Participant {
  userId: number;
  username: string;
  joinedAt: string;
}

export interface Conversation {
  conversationId: number;
  title: string | null;
  createdAt: string;
  lastMessageId: number | null;
  participants: Participant[];
  /** The conversation key wrapped for the caller, base64. */
  encryptedKey: string;
}

export interface NewParticipant {
  username: string;
  /** The conversation key wrapped for this participant, base64 (16 to 1,024 bytes decoded). */
  encryptedKey: string;
}

export interface CreateConversationRequest {
  title?: string | null;
  /** 2 to 256, the creator included, no duplicates. */
  participants: NewParticipant[];
}

export type AddParticipantRequest = NewParticipant;

export interface SendMessageRequest {
  conversationId: number;
  nonce: string;
  ciphertext: string;
  authTag: string;
  associatedData?: string | null;
  /** 1 to 64 characters; a retry with the same id answers 200 with the first answer. */
  clientMessageId?: string;
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
  senderUsername: string;
  timestamp: string;
  nonce: string;
  ciphertext: string;
  authTag: string;
  associatedData: string | null;
  clientMessageId: string | null;
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
