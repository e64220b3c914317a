import { importJWK, SignJWT } from "jose";
import type { PushConfig } from "../config";

/** RFC 8292 allows at most 24 hours; 12 leaves room for clock skew at the push service. */
export const VAPID_TTL_SECONDS = 12 * 60 * 60;

const signingKeys = new WeakMap<PushConfig, Promise<CryptoKey | Uint8Array>>();

/**
 * The `Authorization` header for a push to `endpoint` (RFC 8292 §3): an ES256 JWT whose `aud` is the
 * endpoint's origin, `exp` 12 hours ahead and `sub` the configured contact, plus the public key.
 */
export async function vapidAuthorization(endpoint: string, settings: PushConfig, now = Date.now()): Promise<string> {
  let key = signingKeys.get(settings);
  if (!key) {
    key = importJWK(settings.privateKey, "ES256");
    signingKeys.set(settings, key);
  }
  const jwt = await new SignJWT({ sub: settings.subject })
    .setProtectedHeader({ alg: "ES256", typ: "JWT" })
    .setAudience(new URL(endpoint).origin)
    .setExpirationTime(Math.floor(now / 1000) + VAPID_TTL_SECONDS)
    .sign(await key);
  return `vapid t=${jwt}, k=${settings.publicKey}`;
}
