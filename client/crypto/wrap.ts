/**
 * Wrap format v2 (an epoch key for one device, bound to its conversation and epoch, signed by the
 * wrapping device) and the provisioning envelope (the account key for a newly approved device).
 * Byte-by-byte description: docs/client.md.
 */
import { type Bytes, bytes, concatBytes } from "../bytes.ts";
import {
  CryptoFormatError,
  context,
  EPOCH_KEY_BYTES,
  exportRaw,
  NONCE_BYTES,
  openFromX25519,
  requireSignature,
  sealToX25519,
  sign,
  u32,
  u64,
  X25519_KEY_BYTES,
} from "./primitives.ts";

export const KEY_WRAP_VERSION = 2;
/** 1 + 32 + 12 + 32 + 16. */
export const WRAPPED_KEY_BYTES = 1 + X25519_KEY_BYTES + NONCE_BYTES + EPOCH_KEY_BYTES + 16;
/**
 * The conversation id bound into wraps made while a conversation is created (its id does not
 * exist yet); only valid with epoch 1. See docs/client.md, "Creation wraps".
 */
export const UNBOUND_CONVERSATION = 0;

const WRAP_LABEL = context("parley/key-wrap/v2");
const WRAP_SIGNATURE_LABEL = context("parley/key-wrap-signature/v2");

/** What a wrap is bound to. `conversationId` 0 = made at creation (epoch 1 only). */
export interface WrapBinding {
  conversationId: number;
  epoch: number;
  recipientDeviceId: number;
}

function bindingBytes(b: WrapBinding): Bytes {
  if (b.conversationId === UNBOUND_CONVERSATION && b.epoch !== 1) {
    throw new CryptoFormatError("only epoch 1 may be wrapped before the conversation has an id");
  }
  if (b.epoch < 1) throw new TypeError("epochs start at 1");
  return concatBytes(u64(b.conversationId, "conversationId"), u32(b.epoch, "epoch"), u64(b.recipientDeviceId));
}

/** The bytes the wrapping device signs: label ‖ conversationId(8) ‖ epoch(4) ‖ recipientDeviceId(8) ‖ wrappedKey(93). */
export function wrapSignatureData(binding: WrapBinding, wrappedKey: Uint8Array): Bytes {
  return concatBytes(WRAP_SIGNATURE_LABEL, bindingBytes(binding), wrappedKey);
}

export interface SignedWrap {
  wrappedKey: Bytes;
  signature: Bytes;
}

/**
 * Wraps an epoch key for one device (its X25519 identity key) and signs the result with the
 * wrapping device's Ed25519 signing key.
 */
export async function wrapEpochKey(
  epochKey: CryptoKey | Uint8Array,
  recipientIdentityKey: Uint8Array,
  binding: WrapBinding,
  signingKey: CryptoKey,
): Promise<SignedWrap> {
  const raw = epochKey instanceof Uint8Array ? bytes(epochKey) : await exportRaw(epochKey);
  try {
    if (raw.byteLength !== EPOCH_KEY_BYTES) throw new CryptoFormatError(`an epoch key is ${EPOCH_KEY_BYTES} bytes`);
    const bound = bindingBytes(binding);
    const version = Uint8Array.of(KEY_WRAP_VERSION);
    const { ephemeralPublic, nonce, sealed } = await sealToX25519(
      recipientIdentityKey,
      raw,
      (eph) => concatBytes(WRAP_LABEL, eph, recipientIdentityKey, bound),
      (eph) => concatBytes(WRAP_LABEL, version, eph, bound),
    );
    const wrappedKey = concatBytes(version, ephemeralPublic, nonce, sealed);
    return { wrappedKey, signature: await sign(signingKey, wrapSignatureData(binding, wrappedKey)) };
  } finally {
    if (!(epochKey instanceof Uint8Array)) raw.fill(0);
  }
}

/**
 * Verifies a wrap's signature against the wrapping device's signing key (which the caller has
 * verified against that user's pinned account key), then unwraps it with this device's identity
 * key. Returns the raw 32-byte epoch key: import it, then zero it. `SignatureError` when the
 * signature does not verify (also when the wrap was made for another conversation, epoch or
 * device), `DecryptionError` when the bytes do not open, `CryptoFormatError` for a bad layout.
 */
export async function unwrapEpochKey(
  wrappedKey: Uint8Array,
  signature: Uint8Array,
  binding: WrapBinding,
  wrapperSigningKey: CryptoKey | Uint8Array,
  recipient: { privateKey: CryptoKey; publicKeyRaw: Uint8Array },
): Promise<Bytes> {
  const data = bytes(wrappedKey);
  if (data[0] !== KEY_WRAP_VERSION) throw new CryptoFormatError(`unsupported key wrap version ${data[0]}`);
  if (data.byteLength !== WRAPPED_KEY_BYTES) {
    throw new CryptoFormatError(`a version 2 wrapped key is ${WRAPPED_KEY_BYTES} bytes, got ${data.byteLength}`);
  }
  await requireSignature(wrapperSigningKey, signature, wrapSignatureData(binding, data), "wrapped key");
  const bound = bindingBytes(binding);
  const eph = data.slice(1, 1 + X25519_KEY_BYTES);
  const nonce = data.slice(1 + X25519_KEY_BYTES, 1 + X25519_KEY_BYTES + NONCE_BYTES);
  const sealed = data.slice(1 + X25519_KEY_BYTES + NONCE_BYTES);
  return openFromX25519(
    recipient.privateKey,
    eph,
    nonce,
    sealed,
    concatBytes(WRAP_LABEL, eph, recipient.publicKeyRaw, bound),
    concatBytes(WRAP_LABEL, data.subarray(0, 1), eph, bound),
    "wrapped key",
  );
}

// ---- provisioning envelope ----

export const PROVISIONING_VERSION = 1;
export const MAX_PROVISIONING_BYTES = 4096;
const PROVISIONING_LABEL = context("parley/provisioning/v1");

/** What an approving device hands the new one: the account key pair. */
export interface ProvisioningPayload {
  accountPublicKey: Uint8Array;
  /** PKCS #8 of the account's Ed25519 private key. */
  accountPrivateKeyPkcs8: Uint8Array;
}

function provisioningBinding(userId: number, deviceId: number): Bytes {
  return concatBytes(u64(userId, "userId"), u64(deviceId, "deviceId"));
}

/**
 * Seals the account key to the new device's identity key:
 * 0x01 ‖ ephemeral(32) ‖ nonce(12) ‖ AES-256-GCM(accountPublicKey(32) ‖ pkcs8Length(4) ‖ pkcs8) ‖ tag(16).
 */
export async function sealProvisioning(
  payload: ProvisioningPayload,
  recipient: { userId: number; deviceId: number; identityKey: Uint8Array },
): Promise<Bytes> {
  if (payload.accountPublicKey.byteLength !== 32) throw new CryptoFormatError("the account key is 32 bytes");
  const plaintext = concatBytes(
    payload.accountPublicKey,
    u32(payload.accountPrivateKeyPkcs8.byteLength),
    payload.accountPrivateKeyPkcs8,
  );
  try {
    const bound = provisioningBinding(recipient.userId, recipient.deviceId);
    const version = Uint8Array.of(PROVISIONING_VERSION);
    const { ephemeralPublic, nonce, sealed } = await sealToX25519(
      recipient.identityKey,
      plaintext,
      (eph) => concatBytes(PROVISIONING_LABEL, eph, recipient.identityKey, bound),
      (eph) => concatBytes(PROVISIONING_LABEL, version, eph, bound),
    );
    const envelope = concatBytes(version, ephemeralPublic, nonce, sealed);
    if (envelope.byteLength > MAX_PROVISIONING_BYTES) throw new CryptoFormatError("provisioning envelope over 4 KiB");
    return envelope;
  } finally {
    plaintext.fill(0);
  }
}

/** Opens a provisioning envelope sealed to this device (`userId`, `deviceId` as the server knows them). */
export async function openProvisioning(
  envelope: Uint8Array,
  self: { userId: number; deviceId: number; privateKey: CryptoKey; publicKeyRaw: Uint8Array },
): Promise<ProvisioningPayload> {
  const data = bytes(envelope);
  if (data[0] !== PROVISIONING_VERSION) throw new CryptoFormatError(`unsupported provisioning version ${data[0]}`);
  if (data.byteLength < 1 + 32 + NONCE_BYTES + 16 + 36) throw new CryptoFormatError("provisioning envelope too short");
  const bound = provisioningBinding(self.userId, self.deviceId);
  const eph = data.slice(1, 33);
  const plaintext = await openFromX25519(
    self.privateKey,
    eph,
    data.slice(33, 33 + NONCE_BYTES),
    data.slice(33 + NONCE_BYTES),
    concatBytes(PROVISIONING_LABEL, eph, self.publicKeyRaw, bound),
    concatBytes(PROVISIONING_LABEL, data.subarray(0, 1), eph, bound),
    "provisioning envelope",
  );
  const length = new DataView(plaintext.buffer).getUint32(32);
  if (plaintext.byteLength !== 36 + length) throw new CryptoFormatError("provisioning payload has a bad length");
  return { accountPublicKey: plaintext.slice(0, 32), accountPrivateKeyPkcs8: plaintext.slice(36) };
}
