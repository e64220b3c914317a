// Base64url (RFC 4648 §5) for Web Push: keys, salts and JWTs travel unpadded in that alphabet.
// The runtime's native TC39 codec; TypeScript's es2024 lib does not declare it yet (see base64.ts).
type Alphabet = { alphabet: "base64" | "base64url"; lastChunkHandling?: "loose" | "strict" };
const native = Uint8Array as unknown as { fromBase64(text: string, options: Alphabet): Uint8Array };

/** Bytes as unpadded base64url. */
export function encodeBase64Url(bytes: Uint8Array): string {
  type Encodable = Uint8Array & { toBase64(options: { alphabet: "base64url"; omitPadding: true }): string };
  return (bytes as Encodable).toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * Decodes base64url or standard base64, padded or not (what browsers' `PushSubscription.toJSON()`
 * and older libraries produce); null if it is neither.
 */
export function decodeBase64Loose(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || (/[+/]/.test(text) && /[-_]/.test(text))) return null;
  const alphabet = /[+/]/.test(text) ? "base64" : "base64url";
  try {
    return native.fromBase64(text, { alphabet, lastChunkHandling: "loose" });
  } catch {
    return null;
  }
}
