// RFC 8291 (Message Encryption for Web Push) over RFC 8188's aes128gcm: one record, Web Crypto only.

/** The record size written in the header; a push service accepts 4,096 bytes of payload in all. */
export const RECORD_SIZE = 4096;
const HEADER_BYTES = 16 + 4 + 1 + 65;
const TAG_BYTES = 16;
/** The most plaintext that fits one record and the 4,096-byte payload limit (1 byte is the delimiter). */
export const MAX_PLAINTEXT_BYTES = RECORD_SIZE - HEADER_BYTES - TAG_BYTES - 1;

export interface SubscriptionKeys {
  /** The user agent's uncompressed P-256 public key (65 bytes). */
  p256dh: Uint8Array;
  /** The 16-byte authentication secret. */
  auth: Uint8Array;
}

export interface EncryptOptions {
  /** Fixed only by the RFC's test vector; otherwise 16 fresh random bytes. */
  salt?: Uint8Array;
  /** Fixed only by the RFC's test vector; otherwise a fresh ECDH P-256 pair per message. */
  senderKeys?: CryptoKeyPair;
  /** Pads the plaintext to this many bytes, so that every push has the same size on the wire. */
  padTo?: number;
}

const text = (s: string) => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

async function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, bytes: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8));
}

/** The `aes128gcm` body for one push: header (salt, record size, sender key) then one record. */
export async function encryptPushPayload(
  plaintext: Uint8Array,
  keys: SubscriptionKeys,
  options: EncryptOptions = {},
): Promise<Uint8Array> {
  const padTo = Math.max(options.padTo ?? 0, plaintext.byteLength);
  if (padTo > MAX_PLAINTEXT_BYTES) throw new RangeError(`a push payload is at most ${MAX_PLAINTEXT_BYTES} bytes`);
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const sender =
    options.senderKeys ??
    ((await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair);
  const senderPublic = new Uint8Array((await crypto.subtle.exportKey("raw", sender.publicKey)) as ArrayBuffer);
  const receiver = await crypto.subtle.importKey("raw", keys.p256dh, { name: "ECDH", namedCurve: "P-256" }, false, []);
  // workers-types calls the parameter `$public`; the runtime wants `public`.
  const ecdh = { name: "ECDH", public: receiver } as unknown as SubtleCryptoDeriveKeyAlgorithm;
  const shared = new Uint8Array(await crypto.subtle.deriveBits(ecdh, sender.privateKey, 256));

  // RFC 8291 §3.4: the auth secret and both public keys go into the IKM; §3.3 / RFC 8188 §2.2 the CEK and nonce.
  const ikm = await hkdf(keys.auth, shared, concat(text("WebPush: info\0"), keys.p256dh, senderPublic), 32);
  const cek = await hkdf(salt, ikm, text("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, text("Content-Encoding: nonce\0"), 12);

  // RFC 8188 §2: the last (here the only) record ends with the delimiter 0x02, then zero padding.
  const record = new Uint8Array(padTo + 1);
  record.set(plaintext);
  record[plaintext.byteLength] = 2;
  const aes = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, aes, record));

  const header = new Uint8Array(HEADER_BYTES);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, RECORD_SIZE);
  header[20] = senderPublic.byteLength;
  header.set(senderPublic, 21);
  return concat(header, sealed);
}
