import { afterEach, expect } from "vitest";
import { closeAll, type MessageResponse, openSocket, type PostedMessage, type TestSocket } from "./helpers.js";

// Shared by the socket test files (realtime.test.ts, inbox.test.ts).

/** Every socket a test opens through these is closed after it, pass or fail (call at a file's top level). */
export function trackSockets(): {
  track: (socket: TestSocket) => TestSocket;
  open: (url: string) => Promise<TestSocket>;
} {
  const sockets: TestSocket[] = [];
  const track = (socket: TestSocket) => {
    sockets.push(socket);
    return socket;
  };
  afterEach(async () => {
    await closeAll(sockets.splice(0));
  });
  return { track, open: async (url: string) => track(await openSocket(url)) };
}

/** What a client checks on a `newMessage`: the stored message, byte for byte as posted. */
export function expectMatchesPosted(received: MessageResponse, posted: PostedMessage) {
  expect(received).toEqual({
    messageId: posted.messageId,
    seq: posted.seq,
    conversationId: posted.sent.conversationId,
    senderId: posted.sender.userId,
    senderUsername: posted.sender.username,
    senderDeviceId: posted.sender.deviceId,
    keyEpoch: posted.sent.keyEpoch,
    timestamp: posted.timestamp,
    nonce: posted.sent.nonce,
    ciphertext: posted.sent.ciphertext,
    authTag: posted.sent.authTag,
    associatedData: posted.sent.associatedData,
    signature: posted.sent.signature,
    clientMessageId: posted.sent.clientMessageId,
    attachments: [],
    relatesTo: null,
    expiresAt: null,
    deleted: false,
  });
}

/** Seqs `first..first+n-1`, each once, in order. */
export const run = (first: number, n: number) => Array.from({ length: n }, (_, i) => first + i);
