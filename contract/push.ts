/**
 * Web Push (issue #14): RFC 8030 delivery, VAPID (RFC 8292) and `aes128gcm` payloads (RFC 8291).
 * A push carries ids only; the app fetches the message itself over the API.
 */

/** `GET /push/vapid-public-key`: the `applicationServerKey` for `PushManager.subscribe()`. */
export interface VapidPublicKey {
  /** The uncompressed P-256 public key, unpadded base64url. */
  publicKey: string;
}

/** `PUT /devices/{deviceId}/push`: what `PushSubscription.toJSON()` gives (`expirationTime` is ignored). */
export interface PushSubscriptionRequest {
  /** `https://` (plain `http://` and loopback only where the deployment allows them). */
  endpoint: string;
  /** base64url or standard base64: `p256dh` 65 bytes (uncompressed P-256), `auth` 16 bytes. */
  keys: { p256dh: string; auth: string };
  expirationTime?: number | null;
}

/** The plaintext of every push, exactly this JSON: never ciphertext, names or previews. */
export interface PushPayload {
  conversationId: number;
  messageId: number;
}
