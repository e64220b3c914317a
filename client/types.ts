/** The Parley API's JSON shapes, as the contract (v1) describes them. Binary fields are base64 strings. */

export interface RegisterResponse {
  userId: number;
  username: string;
}

export interface LoginResponse {
  accessToken: string;
  tokenType: "Bearer";
  expiresIn: number;
}

export interface Me {
  userId: number;
  username: string;
  publicKey: string;
  createdAt: string;
}

export interface PublicUser {
  userId: number;
  username: string;
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
  /** The conversation key wrapped for the caller (base64). */
  encryptedKey: string;
}

export interface SendMessageRequest {
  conversationId: number;
  nonce: string;
  ciphertext: string;
  authTag: string;
  associatedData?: string;
  clientMessageId?: string;
}

export interface SendMessageResponse {
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

export interface MembershipEvent {
  conversationId: number;
  userId: number;
  username: string;
  by: number;
}

/** One JSON frame the server sends on a conversation or inbox socket. */
export type ServerFrame =
  | { type: "newMessage"; data: MessageResponse }
  | { type: "participantAdded"; data: MembershipEvent }
  | { type: "participantRemoved"; data: MembershipEvent }
  | { type: "conversationCreated"; data: Conversation }
  | { type: "error"; error: { code: string; message: string } };

export interface ErrorBody {
  error: { code: string; message: string; details?: { path: string; message: string }[] };
}
