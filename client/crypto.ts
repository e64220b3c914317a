/**
 * Parley's end-to-end encryption, on Web Crypto only (browsers, Node 22+, Workers).
 *
 * Identity keys: one long-term X25519 key pair per user and device; the raw 32-byte public key is
 * what `POST /auth/register` and `PUT /users/me/public-key` carry.
 *
 * Conversation keys: one random AES-256-GCM key per conversation, wrapped for each participant.
 *
 * Key wrap format, version 1 (93 bytes, the `encryptedKey` of the API once base64-decoded):
 *
 *   offset  size  field
 *   0       1     version = 0x01
 *   1       32    ephemeral X25519 public key (raw), fresh for every wrap
 *   33      12    AES-GCM nonce, random
 *   45      48    AES-GCM ciphertext of the 32-byte raw conversation key (32) || tag (16)
 *
 *   shared  = X25519(ephemeral private key, recipient public key)   (all-zero result refused)
 *   kek     = HKDF-SHA-256(ikm = shared, salt = 32 zero bytes,
 *                          info = "parley/key-wrap/v1" || ephemeral public || recipient public,
 *                          length = 32 bytes), used as an AES-256-GCM key
 *   sealed  = AES-GCM(kek, nonce, plaintext = raw conversation key,
 *                     additionalData = bytes 0..32 (version || ephemeral public key))
 *
 * Messages, format version 1: AES-256-GCM under the conversation key with a fresh random 12-byte
 * nonce per message. The API takes `nonce`, `ciphertext` and the 16-byte `authTag` separately
 * (Web Crypto returns ciphertext || tag, which is split). `associatedData` is the UTF-8 text
 *
 *   parley/message/v1;conversation=<conversationId>;sender=<senderUserId>
 *
 * and is sent along for transparency, but a reader never trusts the stored copy: it rebuilds the
 * text from the conversation it is reading and the `senderId` the server reports, so a message
 * moved to another conversation or attributed to another sender fails to decrypt.
 */
import { type Bytes, bytes, concatBytes, equalBytes, fromUtf8, randomBytes, toHex, utf8 } from "./bytes.ts";

export const KEY_WRAP_VERSION = 1;
export const MESSAGE_FORMAT_VERSION = 1;
export const X25519_KEY_BYTES = 32;
export const CONVERSATION_KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const AUTH_TAG_BYTES = 16;
/** 1 + 32 + 12 + 32 + 16. */
export const WRAPPED_KEY_BYTES = 1 + X25519_KEY_BYTES + NONCE_BYTES + CONVERSATION_KEY_BYTES + AUTH_TAG_BYTES;

const KEY_WRAP_INFO_V1 = utf8("parley/key-wrap/v1");
const MESSAGE_AAD_PREFIX = "parley/message/";

/** The data is not in a format (or version) this library reads. */
export class CryptoFormatError extends Error {
  override name = "CryptoFormatError";
}

/** Authentication failed: wrong key, wrong recipient, or tampered nonce, ciphertext, tag or associated data. */
export class DecryptionError extends Error {
  override name = "DecryptionError";
}

/** A user's long-term X25519 key pair. The private key is non-extractable unless asked otherwise. */
export interface IdentityKeys {
  publicKey: CryptoKey;
  privateKey: CryptoKey;
  /** The raw 32-byte public key, as registered with the server. */
  publicKeyRaw: Bytes;
}

/** Who a message belongs to: both are bound into its associated data. */
export interface MessageContext {
  conversationId: number;
  senderId: number;
}

export interface EncryptedMessage {
  nonce: Bytes;
  ciphertext: Bytes;
  authTag: Bytes;
  associatedData: Bytes;
}

const subtle = (): SubtleCrypto => crypto.subtle;

// The Workers typings spell ECDH's `public` parameter `$public`; browsers and Node use `public`.
type DeriveBitsParams = Parameters<SubtleCrypto["deriveBits"]>[0];
type DeriveKeyParams = Parameters<SubtleCrypto["deriveKey"]>[0];
type EncryptParams = Parameters<SubtleCrypto["encrypt"]>[0];

function aesGcm(iv: Bytes, additionalData: Bytes): EncryptParams {
  return { name: "AES-GCM", iv, additionalData, tagLength: 128 } as EncryptParams;
}

async function x25519(privateKey: CryptoKey, publicKey: CryptoKey): Promise<Bytes> {
  const params = { name: "X25519", public: publicKey } as unknown as DeriveBitsParams;
  const shared = bytes(await subtle().deriveBits(params, privateKey, 256));
  // A low-order peer key yields all zeros: refuse it rather than derive a predictable key.
  if (shared.every((b) => b === 0)) throw new CryptoFormatError("X25519 produced an all-zero shared secret");
  return shared;
}

/** Generates an identity key pair; keep `extractable` false unless the private key must be backed up. */
export async function generateIdentityKeys(options: { extractable?: boolean } = {}): Promise<IdentityKeys> {
  const pair = (await subtle().generateKey({ name: "X25519" }, options.extractable ?? false, [
    "deriveBits",
  ])) as CryptoKeyPair;
  return {
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
    publicKeyRaw: await exportPublicKey(pair.publicKey),
  };
}

export async function exportPublicKey(publicKey: CryptoKey): Promise<Bytes> {
  return bytes((await subtle().exportKey("raw", publicKey)) as ArrayBuffer);
}

export async function importPublicKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.byteLength !== X25519_KEY_BYTES) {
    throw new CryptoFormatError(`an X25519 public key is ${X25519_KEY_BYTES} bytes, got ${raw.byteLength}`);
  }
  return subtle().importKey("raw", bytes(raw), { name: "X25519" }, true, []);
}

/** Serialises an extractable identity for backup or a file (PKCS #8 private key, raw public key). */
export async function exportIdentityKeys(keys: IdentityKeys): Promise<{ publicKey: Bytes; privateKey: Bytes }> {
  if (!keys.privateKey.extractable) throw new CryptoFormatError("this private key is not extractable");
  const pkcs8 = bytes((await subtle().exportKey("pkcs8", keys.privateKey)) as ArrayBuffer);
  return { publicKey: keys.publicKeyRaw, privateKey: pkcs8 };
}

/** The inverse of `exportIdentityKeys`; the imported private key is non-extractable unless asked. */
export async function importIdentityKeys(
  serialised: { publicKey: Uint8Array; privateKey: Uint8Array },
  options: { extractable?: boolean } = {},
): Promise<IdentityKeys> {
  const privateKey = await subtle().importKey(
    "pkcs8",
    bytes(serialised.privateKey),
    { name: "X25519" },
    options.extractable ?? false,
    ["deriveBits"],
  );
  const publicKey = await importPublicKey(serialised.publicKey);
  return { publicKey, privateKey, publicKeyRaw: bytes(serialised.publicKey) };
}

/**
 * A short, human-comparable fingerprint of a public key (SHA-256, first 16 bytes, hex in groups of
 * four). Two people who read the same fingerprint for a username know the server did not swap keys.
 */
export async function fingerprint(publicKeyRaw: Uint8Array): Promise<string> {
  const digest = bytes(await subtle().digest("SHA-256", bytes(publicKeyRaw))).subarray(0, 16);
  return toHex(digest).match(/.{4}/g)!.join(" ");
}

/** A fresh random AES-256-GCM conversation key (extractable: it has to be wrapped). */
export async function generateConversationKey(): Promise<CryptoKey> {
  return subtle().importKey("raw", randomBytes(CONVERSATION_KEY_BYTES), { name: "AES-GCM" }, true, [
    "encrypt",
    "decrypt",
  ]);
}

export async function importConversationKey(
  raw: Uint8Array,
  options: { extractable?: boolean } = {},
): Promise<CryptoKey> {
  if (raw.byteLength !== CONVERSATION_KEY_BYTES) {
    throw new CryptoFormatError(`a conversation key is ${CONVERSATION_KEY_BYTES} bytes, got ${raw.byteLength}`);
  }
  return subtle().importKey("raw", bytes(raw), { name: "AES-GCM" }, options.extractable ?? false, [
    "encrypt",
    "decrypt",
  ]);
}

async function keyEncryptionKey(
  shared: Bytes,
  ephemeralPublic: Uint8Array,
  recipientPublic: Uint8Array,
): Promise<CryptoKey> {
  const ikm = await subtle().importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  const params = {
    name: "HKDF",
    hash: "SHA-256",
    salt: new Uint8Array(32),
    info: concatBytes(KEY_WRAP_INFO_V1, ephemeralPublic, recipientPublic),
  } as unknown as DeriveKeyParams;
  return subtle().deriveKey(params, ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/**
 * Wraps a conversation key for one recipient (format version 1, see the top of this file).
 * `recipientPublicKey` is the raw 32-byte X25519 key the server returned for that user.
 */
export async function wrapConversationKey(
  conversationKey: CryptoKey | Uint8Array,
  recipientPublicKey: Uint8Array,
): Promise<Bytes> {
  const raw =
    conversationKey instanceof Uint8Array
      ? bytes(conversationKey)
      : bytes((await subtle().exportKey("raw", conversationKey)) as ArrayBuffer);
  if (raw.byteLength !== CONVERSATION_KEY_BYTES) {
    throw new CryptoFormatError(`a conversation key is ${CONVERSATION_KEY_BYTES} bytes, got ${raw.byteLength}`);
  }
  const recipient = await importPublicKey(recipientPublicKey);
  const ephemeral = (await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"])) as CryptoKeyPair;
  const ephemeralPublic = await exportPublicKey(ephemeral.publicKey);
  const kek = await keyEncryptionKey(
    await x25519(ephemeral.privateKey, recipient),
    ephemeralPublic,
    recipientPublicKey,
  );
  const header = concatBytes(Uint8Array.of(KEY_WRAP_VERSION), ephemeralPublic);
  const nonce = randomBytes(NONCE_BYTES);
  const sealed = bytes(await subtle().encrypt(aesGcm(nonce, header), kek, raw));
  return concatBytes(header, nonce, sealed);
}

/**
 * Unwraps a conversation key wrapped for `identity`. Throws `DecryptionError` when it was wrapped
 * for someone else or altered, `CryptoFormatError` for an unknown version or length. The key is
 * non-extractable unless `extractable` (needed only to wrap it again for a new participant).
 */
export async function unwrapConversationKey(
  wrapped: Uint8Array,
  identity: Pick<IdentityKeys, "privateKey" | "publicKeyRaw">,
  options: { extractable?: boolean } = {},
): Promise<CryptoKey> {
  const data = bytes(wrapped);
  if (data.byteLength < 1) throw new CryptoFormatError("empty wrapped key");
  if (data[0] !== KEY_WRAP_VERSION) throw new CryptoFormatError(`unsupported key wrap version ${data[0]}`);
  if (data.byteLength !== WRAPPED_KEY_BYTES) {
    throw new CryptoFormatError(`a version 1 wrapped key is ${WRAPPED_KEY_BYTES} bytes, got ${data.byteLength}`);
  }
  const header = data.slice(0, 1 + X25519_KEY_BYTES);
  const ephemeralPublic = data.slice(1, 1 + X25519_KEY_BYTES);
  const nonce = data.slice(header.byteLength, header.byteLength + NONCE_BYTES);
  const sealed = data.slice(header.byteLength + NONCE_BYTES);
  let raw: Bytes;
  try {
    const kek = await keyEncryptionKey(
      await x25519(identity.privateKey, await importPublicKey(ephemeralPublic)),
      ephemeralPublic,
      identity.publicKeyRaw,
    );
    raw = bytes(await subtle().decrypt(aesGcm(nonce, header), kek, sealed));
  } catch (err) {
    if (err instanceof CryptoFormatError) throw err;
    throw new DecryptionError("cannot unwrap the conversation key: it was wrapped for another key, or altered");
  }
  try {
    return await importConversationKey(raw, options);
  } finally {
    raw.fill(0);
  }
}

function checkId(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${what} must be a positive integer`);
}

/** The associated data of a version 1 message: binds the format version, conversation and sender. */
export function messageAssociatedData(context: MessageContext): Bytes {
  checkId(context.conversationId, "conversationId");
  checkId(context.senderId, "senderId");
  return utf8(
    `${MESSAGE_AAD_PREFIX}v${MESSAGE_FORMAT_VERSION};conversation=${context.conversationId};sender=${context.senderId}`,
  );
}

/** Encrypts one message (UTF-8 text or bytes) with a fresh random nonce. */
export async function encryptMessage(
  conversationKey: CryptoKey,
  plaintext: string | Uint8Array,
  context: MessageContext,
): Promise<EncryptedMessage> {
  const associatedData = messageAssociatedData(context);
  const nonce = randomBytes(NONCE_BYTES);
  const data = typeof plaintext === "string" ? utf8(plaintext) : bytes(plaintext);
  const sealed = bytes(await subtle().encrypt(aesGcm(nonce, associatedData), conversationKey, data));
  return {
    nonce,
    ciphertext: sealed.slice(0, sealed.byteLength - AUTH_TAG_BYTES),
    authTag: sealed.slice(sealed.byteLength - AUTH_TAG_BYTES),
    associatedData,
  };
}

/**
 * Decrypts one message to bytes. The associated data is rebuilt from `context` (the conversation
 * being read and the sender the server names); a stored copy, when given, must match it.
 */
export async function decryptMessageBytes(
  conversationKey: CryptoKey,
  message: { nonce: Uint8Array; ciphertext: Uint8Array; authTag: Uint8Array; associatedData?: Uint8Array | null },
  context: MessageContext,
): Promise<Bytes> {
  const expected = messageAssociatedData(context);
  if (message.associatedData != null && !equalBytes(message.associatedData, expected)) {
    let text = "";
    try {
      text = fromUtf8(message.associatedData);
    } catch {
      // Not text: certainly not ours.
    }
    if (text.startsWith(MESSAGE_AAD_PREFIX) && !text.startsWith(`${MESSAGE_AAD_PREFIX}v${MESSAGE_FORMAT_VERSION};`)) {
      throw new CryptoFormatError(`unsupported message format: ${text.split(";")[0]}`);
    }
    throw new DecryptionError("the message's associated data names another conversation or sender");
  }
  if (message.nonce.byteLength !== NONCE_BYTES) throw new CryptoFormatError(`a message nonce is ${NONCE_BYTES} bytes`);
  if (message.authTag.byteLength !== AUTH_TAG_BYTES)
    throw new CryptoFormatError(`an auth tag is ${AUTH_TAG_BYTES} bytes`);
  try {
    const sealed = concatBytes(message.ciphertext, message.authTag);
    return bytes(await subtle().decrypt(aesGcm(bytes(message.nonce), expected), conversationKey, sealed));
  } catch {
    throw new DecryptionError("cannot decrypt the message: wrong key, or it was altered");
  }
}

/** Decrypts one message to text (throws `DecryptionError` on invalid UTF-8 too). */
export async function decryptMessage(
  conversationKey: CryptoKey,
  message: { nonce: Uint8Array; ciphertext: Uint8Array; authTag: Uint8Array; associatedData?: Uint8Array | null },
  context: MessageContext,
): Promise<string> {
  const plaintext = await decryptMessageBytes(conversationKey, message, context);
  try {
    return fromUtf8(plaintext);
  } catch {
    throw new DecryptionError("the message is not valid UTF-8 text");
  }
}
