/**
 * Byte helpers shared by the client library: standard base64 with padding (RFC 4648 §4, what the
 * Parley API speaks), UTF-8 and a few array utilities. Only `btoa`/`atob` and `TextEncoder` are
 * used, so this runs unchanged in browsers, Node 22+ and Workers.
 */

/** Bytes backed by a plain `ArrayBuffer`: what every Web Crypto call accepts in every runtime's typings. */
export type Bytes = Uint8Array<ArrayBuffer>;

/** A copy of `data` in a fresh `ArrayBuffer` (also normalises views over a `SharedArrayBuffer`). */
export function bytes(data: ArrayBuffer | ArrayBufferView): Bytes {
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0));
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(view.byteLength);
  out.set(view);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** Compares without an early exit (the inputs here are public values, but it costs nothing). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function randomBytes(n: number): Bytes {
  return crypto.getRandomValues(new Uint8Array(n));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

export function utf8(text: string): Bytes {
  return bytes(encoder.encode(text));
}

/** Decodes UTF-8, throwing on invalid sequences rather than inserting U+FFFD. */
export function fromUtf8(data: Uint8Array): string {
  return decoder.decode(data);
}

const CHUNK = 0x8000;

export function toBase64(data: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < data.byteLength; i += CHUNK) {
    binary += String.fromCharCode(...data.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 with padding; anything else (URL-safe alphabet, whitespace, no padding) throws. */
export function fromBase64(text: string): Bytes {
  if (!BASE64.test(text)) throw new TypeError("not standard base64 with padding");
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function toHex(data: Uint8Array): string {
  let hex = "";
  for (const b of data) hex += b.toString(16).padStart(2, "0");
  return hex;
}
