/**
 * Web Push helpers (issue #14): the server's VAPID key, a subscription made through a
 * `PushManager` (or anything shaped like one), handed to the server for this device. Pushes carry
 * only `{ conversationId, messageId }` (docs/push.md); the app fetches and decrypts the message itself.
 */
import type { PushPayload, PushSubscriptionRequest, VapidPublicKey } from "../contract/index.ts";
import type { Bytes } from "./bytes.ts";
import type { HttpTransport } from "./http.ts";

/** What `subscribe` needs of a `PushManager` (a service worker registration's `pushManager`). */
export interface PushManagerLike {
  getSubscription(): Promise<PushSubscriptionLike | null>;
  subscribe(options: { userVisibleOnly: boolean; applicationServerKey: BufferSource }): Promise<PushSubscriptionLike>;
}
export interface PushSubscriptionLike {
  readonly options?: { applicationServerKey: ArrayBuffer | null };
  toJSON(): { endpoint?: string; keys?: Record<string, string>; expirationTime?: number | null };
  unsubscribe(): Promise<boolean>;
}

/** Unpadded (or padded) base64url to bytes. */
export function fromBase64Url(text: string): Bytes {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export async function vapidPublicKey(http: HttpTransport): Promise<Bytes> {
  const { publicKey } = await http.request<VapidPublicKey>("GET", "/push/vapid-public-key");
  return fromBase64Url(publicKey);
}

const sameKey = (a: ArrayBuffer | null | undefined, b: Uint8Array): boolean => {
  if (!a || a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
};

/**
 * Subscribes `pushManager` with the server's VAPID key (an existing subscription made with another
 * key is replaced) and stores it for `deviceId` (`PUT /devices/{id}/push`). Ask the person for
 * notification permission before calling this.
 */
export async function subscribePush(
  http: HttpTransport,
  deviceId: number,
  pushManager: PushManagerLike,
): Promise<PushSubscriptionLike> {
  const key = await vapidPublicKey(http);
  let subscription = await pushManager.getSubscription();
  if (subscription?.options && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const json = subscription.toJSON();
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) throw new TypeError("the subscription has no keys");
  const body: PushSubscriptionRequest = {
    endpoint: json.endpoint,
    keys: { p256dh: json.keys.p256dh, auth: json.keys.auth },
  };
  await http.request<void>("PUT", `/devices/${deviceId}/push`, { body });
  return subscription;
}

/** Stops pushes to `deviceId` on the server, then drops the browser's subscription if given. */
export async function unsubscribePush(
  http: HttpTransport,
  deviceId: number,
  pushManager?: PushManagerLike,
): Promise<void> {
  await http.request<void>("DELETE", `/devices/${deviceId}/push`);
  await (await pushManager?.getSubscription())?.unsubscribe();
}

/** Reads a push's decrypted data (what a service worker gets as `event.data.json()`). */
export function parsePushPayload(data: unknown): PushPayload | null {
  const p = data as Partial<PushPayload> | null;
  return p && Number.isSafeInteger(p.conversationId) && Number.isSafeInteger(p.messageId)
    ? { conversationId: p.conversationId as number, messageId: p.messageId as number }
    : null;
}
