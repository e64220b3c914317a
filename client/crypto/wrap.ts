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

/** v2 carries earlier epoch keys after the account key; v1 (the account key alone) is still opened. */
export const PROVISIONING_VERSION = 2;
export const MAX_PROVISIONING_BYTES = 4096;
const PROVISIONING_LABELS: Record<number, Bytes> = {
  1: context("parley/provisioning/v1"),
  2: context("parley/provisioning/v2"),
};
/** version(1) ‖ ephemeral(32) ‖ nonce(12) ‖ … ‖ tag(16). */
const ENVELOPE_OVERHEAD = 1 + X25519_KEY_BYTES + NONCE_BYTES + 16;
/** conversationId(8) ‖ epoch(4) ‖ flags(1) ‖ key(32). */
export const PROVISIONED_KEY_BYTES = 8 + 4 + 1 + EPOCH_KEY_BYTES;
const FLAG_BOUND = 0x01;

/** An earlier epoch key handed to the new device (raw bytes: zero them after use). */
export interface ProvisionedEpochKey {
  conversationId: number;
  epoch: number;
  /** False for a key the approver held only as another device's creation wrap (docs/client.md). */
  bound: boolean;
  key: Bytes;
}

/** What an approving device hands the new one: the account key pair, and earlier epoch keys. */
export interface ProvisioningPayload {
  accountPublicKey: Uint8Array;
  /** PKCS #8 of the account's Ed25519 private key. */
  accountPrivateKeyPkcs8: Uint8Array;
  /** Newest first; empty in a v1 envelope. */
  epochKeys?: ProvisionedEpochKey[];
}

/** How many epoch keys fit in one envelope beside an account key whose PKCS #8 is `pkcs8Bytes` long. */
export function provisioningCapacity(pkcs8Bytes: number): number {
  const fixed = ENVELOPE_OVERHEAD + 32 + 4 + pkcs8Bytes + 2;
  return Math.max(0, Math.floor((MAX_PROVISIONING_BYTES - fixed) / PROVISIONED_KEY_BYTES));
}

function provisioningBinding(userId: number, deviceId: number): Bytes {
  return concatBytes(u64(userId, "userId"), u64(deviceId, "deviceId"));
}

function encodeEpochKeys(keys: ProvisionedEpochKey[]): Bytes {
  const out = new Uint8Array(2 + keys.length * PROVISIONED_KEY_BYTES);
  new DataView(out.buffer).setUint16(0, keys.length);
  keys.forEach((k, i) => {
    if (k.key.byteLength !== EPOCH_KEY_BYTES) throw new CryptoFormatError("an epoch key is 32 bytes");
    const at = 2 + i * PROVISIONED_KEY_BYTES;
    out.set(u64(k.conversationId, "conversationId"), at);
    out.set(u32(k.epoch, "epoch"), at + 8);
    out[at + 12] = k.bound ? FLAG_BOUND : 0;
    out.set(k.key, at + 13);
  });
  return out;
}

function decodeEpochKeys(data: Bytes): ProvisionedEpochKey[] {
  if (data.byteLength < 2) throw new CryptoFormatError("provisioning payload has a bad length");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint16(0);
  if (data.byteLength !== 2 + count * PROVISIONED_KEY_BYTES) {
    throw new CryptoFormatError("provisioning payload has a bad length");
  }
  const out: ProvisionedEpochKey[] = [];
  for (let i = 0; i < count; i++) {
    const at = 2 + i * PROVISIONED_KEY_BYTES;
    const conversationId = Number(view.getBigUint64(at));
    const epoch = view.getUint32(at + 8);
    const flags = view.getUint8(at + 12);
    if (conversationId < 1 || !Number.isSafeInteger(conversationId) || epoch < 1 || (flags & ~FLAG_BOUND) !== 0) {
      throw new CryptoFormatError("provisioning payload holds a malformed epoch key");
    }
    out.push({ conversationId, epoch, bound: (flags & FLAG_BOUND) !== 0, key: data.slice(at + 13, at + 45) });
  }
  return out;
}

/**
 * Seals the account key and earlier epoch keys to the new device's identity key:
 * 0x02 ‖ ephemeral(32) ‖ nonce(12) ‖ AES-256-GCM(accountPublicKey(32) ‖ pkcs8Length(4) ‖ pkcs8 ‖
 * count(2) ‖ count × (conversationId(8) ‖ epoch(4) ‖ flags(1) ‖ key(32))) ‖ tag(16).
 * Throws when it would exceed 4 KiB (see `provisioningCapacity`).
 */
export async function sealProvisioning(
  payload: ProvisioningPayload,
  recipient: { userId: number; deviceId: number; identityKey: Uint8Array },
): Promise<Bytes> {
  if (payload.accountPublicKey.byteLength !== 32) throw new CryptoFormatError("the account key is 32 bytes");
  const keys = encodeEpochKeys(payload.epochKeys ?? []);
  const plaintext = concatBytes(
    payload.accountPublicKey,
    u32(payload.accountPrivateKeyPkcs8.byteLength),
    payload.accountPrivateKeyPkcs8,
    keys,
  );
  keys.fill(0);
  try {
    if (ENVELOPE_OVERHEAD + plaintext.byteLength > MAX_PROVISIONING_BYTES) {
      throw new CryptoFormatError("provisioning envelope over 4 KiB");
    }
    const bound = provisioningBinding(recipient.userId, recipient.deviceId);
    const version = Uint8Array.of(PROVISIONING_VERSION);
    const label = PROVISIONING_LABELS[PROVISIONING_VERSION]!;
    const { ephemeralPublic, nonce, sealed } = await sealToX25519(
      recipient.identityKey,
      plaintext,
      (eph) => concatBytes(label, eph, recipient.identityKey, bound),
      (eph) => concatBytes(label, version, eph, bound),
    );
    return concatBytes(version, ephemeralPublic, nonce, sealed);
  } finally {
    plaintext.fill(0);
  }
}

/** Opens a provisioning envelope (v1 or v2) sealed to this device (`userId`, `deviceId` as the server knows them). */
export async function openProvisioning(
  envelope: Uint8Array,
  self: { userId: number; deviceId: number; privateKey: CryptoKey; publicKeyRaw: Uint8Array },
): Promise<ProvisioningPayload> {
  const data = bytes(envelope);
  const version = data[0] ?? 0;
  const label = PROVISIONING_LABELS[version];
  if (!label) throw new CryptoFormatError(`unsupported provisioning version ${version}`);
  if (data.byteLength < ENVELOPE_OVERHEAD + 36) throw new CryptoFormatError("provisioning envelope too short");
  const bound = provisioningBinding(self.userId, self.deviceId);
  const eph = data.slice(1, 33);
  const plaintext = await openFromX25519(
    self.privateKey,
    eph,
    data.slice(33, 33 + NONCE_BYTES),
    data.slice(33 + NONCE_BYTES),
    concatBytes(label, eph, self.publicKeyRaw, bound),
    concatBytes(label, data.subarray(0, 1), eph, bound),
    "provisioning envelope",
  );
  try {
    const length = new DataView(plaintext.buffer).getUint32(32);
    const end = 36 + length;
    if (version === 1 ? plaintext.byteLength !== end : plaintext.byteLength < end + 2) {
      throw new CryptoFormatError("provisioning payload has a bad length");
    }
    return {
      accountPublicKey: plaintext.slice(0, 32),
      accountPrivateKeyPkcs8: plaintext.slice(36, end),
      epochKeys: version === 1 ? [] : decodeEpochKeys(plaintext.subarray(end)),
    };
  } finally {
    plaintext.fill(0);
  }
}
