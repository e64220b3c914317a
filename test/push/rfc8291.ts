// An independent RFC 8291 decryptor for the tests, written from the RFC's steps (§3.3, §3.4, RFC 8188
// §2) with Web Crypto only; it shares no code with src/push/. It plays the user agent.

const b64u = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
export const fromBase64Url = b64u;
export const toBase64Url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

// (`as BufferSource`: Node's DOM typings, for the e2e test that reuses this file, want ArrayBuffer-backed views.)
async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", key as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data as BufferSource));
}

/** HKDF as RFC 5869 writes it (extract, then one expand block: every length here is ≤ 32). */
async function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number) {
  const prk = await hmac(salt, ikm);
  const okm = await hmac(prk, new Uint8Array([...info, 1]));
  return okm.slice(0, length);
}

const bytes = (s: string) => new TextEncoder().encode(s);

export interface UserAgent {
  privateKey: CryptoKey;
  publicKey: Uint8Array;
  auth: Uint8Array;
}

/** A browser's subscription keys: a fresh P-256 pair and a 16-byte auth secret. */
export async function newUserAgent(): Promise<UserAgent> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ])) as CryptoKeyPair;
  const publicKey = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  return { privateKey: pair.privateKey, publicKey, auth: crypto.getRandomValues(new Uint8Array(16)) };
}

/** Decrypts an aes128gcm push body with the user agent's keys; throws if anything does not check out. */
export async function decryptPush(body: Uint8Array, ua: UserAgent): Promise<{ plaintext: string; recordSize: number }> {
  const salt = body.slice(0, 16);
  const recordSize = new DataView(body.buffer, body.byteOffset).getUint32(16);
  const idLength = body[20]!;
  const senderPublic = body.slice(21, 21 + idLength);
  const ciphertext = body.slice(21 + idLength);
  if (ciphertext.byteLength > recordSize) throw new Error("more than one record");
  const sender = await crypto.subtle.importKey("raw", senderPublic, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const algorithm = { name: "ECDH", public: sender } as unknown as Parameters<SubtleCrypto["deriveBits"]>[0];
  const ecdh = new Uint8Array(await crypto.subtle.deriveBits(algorithm, ua.privateKey, 256));
  const ikm = await hkdf(
    ua.auth,
    ecdh,
    new Uint8Array([...bytes("WebPush: info\0"), ...ua.publicKey, ...senderPublic]),
    32,
  );
  const cek = await hkdf(salt, ikm, bytes("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, bytes("Content-Encoding: nonce\0"), 12);
  const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
  const padded = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, key, ciphertext));
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error("the last record must end with the 0x02 delimiter");
  return { plaintext: new TextDecoder().decode(padded.slice(0, end)), recordSize };
}
