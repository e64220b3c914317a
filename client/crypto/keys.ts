/**
 * Long-term keys: the account key (Ed25519, one per user), device keys (an X25519 identity key for
 * key wrapping and an Ed25519 signing key per device), the device signature that binds them, epoch
 * keys (AES-256-GCM, one per conversation and epoch), and the comparison code two screens show
 * when a device is linked. Formats: docs/client.md.
 */
import { DEVICE_SIGNATURE_CONTEXT } from "../../contract/index.ts";
import { type Bytes, bytes, concatBytes, toHex, utf8 } from "../bytes.ts";
import {
  CryptoFormatError,
  context,
  EPOCH_KEY_BYTES,
  exportRaw,
  hkdfBytes,
  importEd25519Public,
  requireSignature,
  sha256,
  sign,
  subtle,
} from "./primitives.ts";

/** The account key. Its private half is extractable: an active device seals it to a new one. */
export interface AccountKeys {
  privateKey: CryptoKey;
  publicKeyRaw: Bytes;
}

/** A device's two key pairs; both private keys are non-extractable. */
export interface DeviceKeys {
  identity: { privateKey: CryptoKey; publicKeyRaw: Bytes };
  signing: { privateKey: CryptoKey; publicKeyRaw: Bytes };
}

/** A device's public half, as the server lists it (raw bytes). */
export interface DevicePublicKeys {
  identityKey: Uint8Array;
  signingKey: Uint8Array;
}

export async function generateAccountKeys(): Promise<AccountKeys> {
  const pair = (await subtle().generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, publicKeyRaw: await exportRaw(pair.publicKey) };
}

/** PKCS #8 of the account's private key (for the provisioning envelope only). */
export async function exportAccountPrivateKey(keys: AccountKeys): Promise<Bytes> {
  return bytes((await subtle().exportKey("pkcs8", keys.privateKey)) as ArrayBuffer);
}

/**
 * Imports an account key received in a provisioning envelope, and proves it is the private half of
 * `publicKeyRaw` (a signature made with it must verify against that public key).
 */
export async function importAccountKeys(pkcs8: Uint8Array, publicKeyRaw: Uint8Array): Promise<AccountKeys> {
  let privateKey: CryptoKey;
  try {
    privateKey = await subtle().importKey("pkcs8", bytes(pkcs8), { name: "Ed25519" }, true, ["sign"]);
  } catch {
    throw new CryptoFormatError("not an Ed25519 private key (PKCS #8)");
  }
  const probe = utf8("parley/account-key-probe");
  await requireSignature(publicKeyRaw, await sign(privateKey, probe), probe, "the provisioned account key");
  return { privateKey, publicKeyRaw: bytes(publicKeyRaw) };
}

export async function generateDeviceKeys(): Promise<DeviceKeys> {
  const identity = (await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"])) as CryptoKeyPair;
  const signing = (await subtle().generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  return {
    identity: { privateKey: identity.privateKey, publicKeyRaw: await exportRaw(identity.publicKey) },
    signing: { privateKey: signing.privateKey, publicKeyRaw: await exportRaw(signing.publicKey) },
  };
}

/** The bytes an account key signs for a device: "parley-device-v1" ‖ identityKey(32) ‖ signingKey(32). */
export function deviceSignatureData(device: DevicePublicKeys): Bytes {
  if (device.identityKey.byteLength !== 32 || device.signingKey.byteLength !== 32) {
    throw new CryptoFormatError("device keys are 32 bytes each");
  }
  return concatBytes(utf8(DEVICE_SIGNATURE_CONTEXT), device.identityKey, device.signingKey);
}

export function signDevice(account: AccountKeys, device: DevicePublicKeys): Promise<Bytes> {
  return sign(account.privateKey, deviceSignatureData(device));
}

/** Throws `SignatureError` unless `signature` is the account key's signature over the device's keys. */
export async function verifyDeviceSignature(
  accountKey: Uint8Array,
  device: DevicePublicKeys,
  signature: Uint8Array | null,
): Promise<void> {
  if (signature === null) throw new CryptoFormatError("the device is not approved (no signature)");
  await requireSignature(
    await importEd25519Public(accountKey),
    signature,
    deviceSignatureData(device),
    "device signature",
  );
}

/** A fresh random epoch key (extractable: it is wrapped for every device right after). */
export async function generateEpochKey(): Promise<CryptoKey> {
  return importEpochKey(crypto.getRandomValues(new Uint8Array(EPOCH_KEY_BYTES)), { extractable: true });
}

export async function importEpochKey(raw: Uint8Array, options: { extractable?: boolean } = {}): Promise<CryptoKey> {
  if (raw.byteLength !== EPOCH_KEY_BYTES) {
    throw new CryptoFormatError(`an epoch key is ${EPOCH_KEY_BYTES} bytes, got ${raw.byteLength}`);
  }
  return subtle().importKey("raw", bytes(raw), { name: "AES-GCM" }, options.extractable ?? false, [
    "encrypt",
    "decrypt",
  ]);
}

const COMPARISON_INFO = context("parley/comparison-code/v1");

/**
 * The code both screens show while a device is linked: 12 decimal digits in groups of four.
 * `HKDF-SHA-256(ikm = accountKey ‖ identityKey ‖ signingKey, info = "parley/comparison-code/v1\0")`,
 * first 8 bytes as an unsigned big-endian integer, modulo 10^12. The new device computes it from
 * the account key the server says it joins and its own keys; the approving device from its own
 * account key and the keys the server lists for the pending device. Equal codes mean neither key
 * set was swapped on the way.
 */
export async function comparisonCode(accountKey: Uint8Array, device: DevicePublicKeys): Promise<string> {
  const ikm = concatBytes(accountKey, device.identityKey, device.signingKey);
  const out = await hkdfBytes(ikm, COMPARISON_INFO, 8);
  const value = new DataView(out.buffer).getBigUint64(0) % 1_000_000_000_000n;
  return value.toString().padStart(12, "0").match(/.{4}/g)!.join(" ");
}

/** A short fingerprint of a public key (SHA-256, first 16 bytes, hex in groups of four). */
export async function fingerprint(publicKeyRaw: Uint8Array): Promise<string> {
  return toHex((await sha256(publicKeyRaw)).subarray(0, 16))
    .match(/.{4}/g)!
    .join(" ");
}
