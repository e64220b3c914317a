import { DEVICE_SIGNATURE_CONTEXT } from "../../contract";

/** The bytes an account key signs to vouch for a device. */
export function deviceSignedBytes(identityKey: Uint8Array, signingKey: Uint8Array): Uint8Array {
  const context = new TextEncoder().encode(DEVICE_SIGNATURE_CONTEXT);
  const bytes = new Uint8Array(context.byteLength + identityKey.byteLength + signingKey.byteLength);
  bytes.set(context, 0);
  bytes.set(identityKey, context.byteLength);
  bytes.set(signingKey, context.byteLength + identityKey.byteLength);
  return bytes;
}

/** Ed25519 verification with Web Crypto; a key the runtime refuses (not a curve point) verifies nothing. */
export async function verifyEd25519(publicKey: Uint8Array, signature: Uint8Array, data: Uint8Array): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, data);
  } catch {
    return false;
  }
}

/** Whether `signature` is the account key's signature over the device's two public keys. */
export function verifyDeviceSignature(
  accountKey: Uint8Array,
  device: { identityKey: Uint8Array; signingKey: Uint8Array; signature: Uint8Array },
): Promise<boolean> {
  return verifyEd25519(accountKey, device.signature, deviceSignedBytes(device.identityKey, device.signingKey));
}

/** SHA-256: enough for refresh tokens and tickets, which carry 256 random bits (no dictionary to try). */
export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** 32 random bytes as unpadded base64url: an opaque bearer secret. */
export function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}
