/**
 * The Web Crypto building blocks every Parley format uses: X25519, HKDF-SHA-256, AES-256-GCM and
 * Ed25519, plus the fixed-width big-endian encodings the signed and bound bytes are made of. Web
 * Crypto only (browsers, Node 22+, Workers). The formats themselves are in `keys.ts`, `wrap.ts`,
 * `message.ts` and `docs/client.md`.
 */
import { type Bytes, bytes, concatBytes, utf8 } from "../bytes.ts";

export const X25519_KEY_BYTES = 32;
export const ED25519_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const EPOCH_KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const AUTH_TAG_BYTES = 16;

/** The data is not in a format (or version) this library reads. */
export class CryptoFormatError extends Error {
  override name = "CryptoFormatError";
}

/** Authentication failed: wrong key, wrong recipient, or tampered nonce, ciphertext, tag or binding. */
export class DecryptionError extends Error {
  override name = "DecryptionError";
}

/** A signature (of a device, a wrap or a message) does not verify against the key it must come from. */
export class SignatureError extends Error {
  override name = "SignatureError";
}

export const subtle = (): SubtleCrypto => crypto.subtle;

// The Workers typings spell ECDH's `public` parameter `$public`; browsers and Node use `public`.
type DeriveBitsParams = Parameters<SubtleCrypto["deriveBits"]>[0];
type DeriveKeyParams = Parameters<SubtleCrypto["deriveKey"]>[0];
type EncryptParams = Parameters<SubtleCrypto["encrypt"]>[0];

export function aesGcm(iv: Bytes, additionalData: Bytes): EncryptParams {
  return { name: "AES-GCM", iv, additionalData, tagLength: 128 } as EncryptParams;
}

/** X25519; an all-zero result (a low-order peer key) is refused rather than used. */
export async function x25519(privateKey: CryptoKey, publicKey: CryptoKey): Promise<Bytes> {
  const params = { name: "X25519", public: publicKey } as unknown as DeriveBitsParams;
  const shared = bytes(await subtle().deriveBits(params, privateKey, 256));
  if (shared.every((b) => b === 0)) throw new CryptoFormatError("X25519 produced an all-zero shared secret");
  return shared;
}

/** HKDF-SHA-256 with a 32-byte zero salt, to an AES-256-GCM key (non-extractable). */
export async function hkdfAesKey(ikm: Bytes, info: Bytes): Promise<CryptoKey> {
  const base = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveKey"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info } as unknown as DeriveKeyParams;
  return subtle().deriveKey(params, base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** HKDF-SHA-256 with a 32-byte zero salt, to `length` raw bytes. */
export async function hkdfBytes(ikm: Bytes, info: Bytes, length: number): Promise<Bytes> {
  const base = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const params = { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info } as unknown as DeriveBitsParams;
  return bytes(await subtle().deriveBits(params, base, length * 8));
}

export async function sha256(data: Uint8Array): Promise<Bytes> {
  return bytes(await subtle().digest("SHA-256", bytes(data)));
}

export async function exportRaw(key: CryptoKey): Promise<Bytes> {
  return bytes((await subtle().exportKey("raw", key)) as ArrayBuffer);
}

function checkLength(raw: Uint8Array, length: number, what: string): void {
  if (raw.byteLength !== length) throw new CryptoFormatError(`${what} is ${length} bytes, got ${raw.byteLength}`);
}

export function importX25519Public(raw: Uint8Array): Promise<CryptoKey> {
  checkLength(raw, X25519_KEY_BYTES, "an X25519 public key");
  return subtle().importKey("raw", bytes(raw), { name: "X25519" }, true, []);
}

export function importEd25519Public(raw: Uint8Array): Promise<CryptoKey> {
  checkLength(raw, ED25519_KEY_BYTES, "an Ed25519 public key");
  return subtle().importKey("raw", bytes(raw), { name: "Ed25519" }, true, ["verify"]);
}

export async function sign(privateKey: CryptoKey, data: Uint8Array): Promise<Bytes> {
  return bytes(await subtle().sign({ name: "Ed25519" }, privateKey, bytes(data)));
}

/** Ed25519 verification that never throws for a bad signature: false instead. */
export async function verify(publicKey: CryptoKey | Uint8Array, signature: Uint8Array, data: Uint8Array) {
  if (signature.byteLength !== SIGNATURE_BYTES) return false;
  const key = publicKey instanceof Uint8Array ? await importEd25519Public(publicKey) : publicKey;
  try {
    return await subtle().verify({ name: "Ed25519" }, key, bytes(signature), bytes(data));
  } catch {
    return false;
  }
}

/** Throws `SignatureError` (with `what` in its message) unless the signature verifies. */
export async function requireSignature(
  publicKey: CryptoKey | Uint8Array,
  signature: Uint8Array,
  data: Uint8Array,
  what: string,
): Promise<void> {
  if (!(await verify(publicKey, signature, data))) throw new SignatureError(`${what}: the signature does not verify`);
}

// ---- fixed-width encodings (big-endian) ----

function checkId(value: number, what: string, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw new TypeError(`${what} is out of range`);
}

/** 8 bytes, big-endian: ids (conversation, user, device). */
export function u64(value: number, what = "id"): Bytes {
  checkId(value, what, Number.MAX_SAFE_INTEGER);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

/** 4 bytes, big-endian: epochs and lengths. */
export function u32(value: number, what = "value"): Bytes {
  checkId(value, what, 0xffffffff);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** A context string as its UTF-8 bytes followed by one 0x00 (no context is a prefix of another). */
export function context(label: string): Bytes {
  return concatBytes(utf8(label), Uint8Array.of(0));
}

/** Seals `plaintext` to an X25519 public key: fresh ephemeral key, HKDF(info), AES-256-GCM(aad). */
export async function sealToX25519(
  recipientPublic: Uint8Array,
  plaintext: Uint8Array,
  info: (ephemeralPublic: Bytes) => Bytes,
  aad: (ephemeralPublic: Bytes) => Bytes,
): Promise<{ ephemeralPublic: Bytes; nonce: Bytes; sealed: Bytes }> {
  const recipient = await importX25519Public(recipientPublic);
  const ephemeral = (await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"])) as CryptoKeyPair;
  const ephemeralPublic = await exportRaw(ephemeral.publicKey);
  const kek = await hkdfAesKey(await x25519(ephemeral.privateKey, recipient), info(ephemeralPublic));
  const nonce = bytes(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)));
  const sealed = bytes(await subtle().encrypt(aesGcm(nonce, aad(ephemeralPublic)), kek, bytes(plaintext)));
  return { ephemeralPublic, nonce, sealed };
}

/** The inverse of `sealToX25519`; any failure to authenticate is a `DecryptionError`. */
export async function openFromX25519(
  recipientPrivate: CryptoKey,
  ephemeralPublic: Bytes,
  nonce: Bytes,
  sealed: Bytes,
  info: Bytes,
  aad: Bytes,
  what: string,
): Promise<Bytes> {
  try {
    const kek = await hkdfAesKey(await x25519(recipientPrivate, await importX25519Public(ephemeralPublic)), info);
    return bytes(await subtle().decrypt(aesGcm(nonce, aad), kek, sealed));
  } catch (err) {
    if (err instanceof CryptoFormatError) throw err;
    throw new DecryptionError(`cannot open the ${what}: it was sealed for another key or binding, or altered`);
  }
}
