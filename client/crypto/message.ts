/**
 * Message format v2: AES-256-GCM under the conversation's epoch key, associated data binding the
 * conversation, the sender (user and device) and the epoch, and an Ed25519 signature by the
 * sending device over everything the server stores. Byte-by-byte description: docs/client.md.
 */
import { type Bytes, bytes, concatBytes, equalBytes, fromUtf8, randomBytes, utf8 } from "../bytes.ts";
import {
  AUTH_TAG_BYTES,
  aesGcm,
  CryptoFormatError,
  context,
  DecryptionError,
  NONCE_BYTES,
  requireSignature,
  sign,
  subtle,
  u32,
  u64,
} from "./primitives.ts";

export const MESSAGE_FORMAT_VERSION = 2;
const AD_LABEL = context("parley/message/v2");
const SIGNATURE_LABEL = context("parley/message-signature/v2");

/** Everything a message is bound to; a reader takes it from the message's metadata, never from the AD. */
export interface MessageBinding {
  conversationId: number;
  senderId: number;
  senderDeviceId: number;
  epoch: number;
}

export interface EncryptedMessage {
  nonce: Bytes;
  ciphertext: Bytes;
  authTag: Bytes;
  associatedData: Bytes;
  signature: Bytes;
}

/** label ‖ conversationId(8) ‖ senderId(8) ‖ senderDeviceId(8) ‖ epoch(4): 46 bytes. */
export function messageAssociatedData(b: MessageBinding): Bytes {
  if (b.conversationId < 1 || b.senderId < 1 || b.senderDeviceId < 1 || b.epoch < 1) {
    throw new TypeError("ids and epochs are positive integers");
  }
  return concatBytes(
    AD_LABEL,
    u64(b.conversationId, "conversationId"),
    u64(b.senderId, "senderId"),
    u64(b.senderDeviceId, "senderDeviceId"),
    u32(b.epoch, "epoch"),
  );
}

/** label ‖ AD(46) ‖ nonce(12) ‖ length(4) ‖ ciphertext ‖ tag(16). */
export function messageSignatureData(
  associatedData: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  authTag: Uint8Array,
): Bytes {
  return concatBytes(SIGNATURE_LABEL, associatedData, nonce, u32(ciphertext.byteLength), ciphertext, authTag);
}

/** Encrypts and signs one message (UTF-8 text or bytes) with a fresh random nonce. */
export async function encryptMessage(
  epochKey: CryptoKey,
  plaintext: string | Uint8Array,
  binding: MessageBinding,
  signingKey: CryptoKey,
): Promise<EncryptedMessage> {
  const associatedData = messageAssociatedData(binding);
  const nonce = randomBytes(NONCE_BYTES);
  const data = typeof plaintext === "string" ? utf8(plaintext) : bytes(plaintext);
  const sealed = bytes(await subtle().encrypt(aesGcm(nonce, associatedData), epochKey, data));
  const ciphertext = sealed.slice(0, sealed.byteLength - AUTH_TAG_BYTES);
  const authTag = sealed.slice(sealed.byteLength - AUTH_TAG_BYTES);
  const signature = await sign(signingKey, messageSignatureData(associatedData, nonce, ciphertext, authTag));
  return { nonce, ciphertext, authTag, associatedData, signature };
}

export interface WireMessageParts {
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  authTag: Uint8Array;
  signature: Uint8Array;
  /** The stored copy, if any: it must equal the rebuilt one. */
  associatedData?: Uint8Array | null;
}

/**
 * Verifies the sender device's signature, then decrypts. The associated data is rebuilt from
 * `binding` (the conversation being read, the sender and device the server names, the message's
 * `keyEpoch`), so a message moved to another conversation, epoch or sender fails: `SignatureError`
 * for the signature, `DecryptionError` for the cipher, `CryptoFormatError` for bad sizes.
 */
export async function decryptMessageBytes(
  epochKey: CryptoKey,
  message: WireMessageParts,
  binding: MessageBinding,
  senderSigningKey: CryptoKey | Uint8Array,
): Promise<Bytes> {
  if (message.nonce.byteLength !== NONCE_BYTES) throw new CryptoFormatError(`a message nonce is ${NONCE_BYTES} bytes`);
  if (message.authTag.byteLength !== AUTH_TAG_BYTES) throw new CryptoFormatError("an auth tag is 16 bytes");
  const expected = messageAssociatedData(binding);
  if (message.associatedData != null && !equalBytes(message.associatedData, expected)) {
    throw new DecryptionError("the message's associated data names another conversation, sender or epoch");
  }
  const signed = messageSignatureData(expected, message.nonce, message.ciphertext, message.authTag);
  await requireSignature(senderSigningKey, message.signature, signed, "message");
  try {
    const sealed = concatBytes(message.ciphertext, message.authTag);
    return bytes(await subtle().decrypt(aesGcm(bytes(message.nonce), expected), epochKey, sealed));
  } catch {
    throw new DecryptionError("cannot decrypt the message: wrong key, or it was altered");
  }
}

/** `decryptMessageBytes`, then UTF-8 (invalid UTF-8 is a `DecryptionError`). */
export async function decryptMessage(
  epochKey: CryptoKey,
  message: WireMessageParts,
  binding: MessageBinding,
  senderSigningKey: CryptoKey | Uint8Array,
): Promise<string> {
  const plaintext = await decryptMessageBytes(epochKey, message, binding, senderSigningKey);
  try {
    return fromUtf8(plaintext);
  } catch {
    throw new DecryptionError("the message is not valid UTF-8 text");
  }
}
