/**
 * Trust on first use. The first account key seen for a user is pinned; every device of that user
 * is used only once its device signature verifies against the pinned key. A different account key
 * later (an identity reset, or a server lying about someone), or an `identityChanged` frame, is
 * never trusted silently: `onIdentityChanged` fires, and wrapping for that user's devices or
 * verifying their new devices is refused (`IdentityChangedError`) until the app calls
 * `trustIdentity(userId)`, typically after the people compared safety numbers. Devices verified
 * before the change stay known, so their old messages stay verifiable.
 */
import type { ConversationDevice, Device, PublicUser } from "../contract/index.ts";
import { type Bytes, equalBytes, fromBase64 } from "./bytes.ts";
import { verifyDeviceSignature } from "./crypto/keys.ts";
import type { HttpTransport } from "./http.ts";
import type { ClientStore, PinRecord, VerifiedDeviceRecord } from "./store.ts";

export interface IdentityChangedEvent {
  userId: number;
  username: string;
  /** The pinned account key. */
  previous: Bytes;
  /** The account key the server reports now, when known (an `identityChanged` frame may precede it). */
  current: Bytes | null;
}

/** A user's account key changed and was not trusted yet: see `trustIdentity()`. */
export class IdentityChangedError extends Error {
  override name = "IdentityChangedError";
  readonly userId: number;
  readonly username: string;
  constructor(userId: number, username: string) {
    super(`the account key of ${username} changed: confirm it with trustIdentity(${userId}) before using it`);
    this.userId = userId;
    this.username = username;
  }
}

/** A device that signed something is not one this client has verified (nor could find). */
export class UnknownDeviceError extends Error {
  override name = "UnknownDeviceError";
}

export class Directory {
  private readonly store: ClientStore;
  private readonly prefix: () => string;
  private readonly http: HttpTransport;
  private readonly onChanged: (event: IdentityChangedEvent) => void;

  constructor(deps: {
    store: ClientStore;
    prefix: () => string;
    http: HttpTransport;
    onIdentityChanged: (event: IdentityChangedEvent) => void;
  }) {
    this.store = deps.store;
    this.prefix = deps.prefix;
    this.http = deps.http;
    this.onChanged = deps.onIdentityChanged;
  }

  private pinKey = (userId: number) => `${this.prefix()}pin/${userId}`;
  private deviceKey = (deviceId: number) => `${this.prefix()}device/${deviceId}`;

  pin(userId: number): Promise<PinRecord | undefined> {
    return this.store.get<PinRecord>(this.pinKey(userId));
  }

  private emit(pin: PinRecord, current: Bytes | null): void {
    try {
      this.onChanged({ userId: pin.userId, username: pin.username, previous: pin.accountKey, current });
    } catch {
      // The app's handler must not break the library.
    }
  }

  /**
   * Pins `accountKey` on first use; afterwards returns the pinned key if it is the same one, and
   * otherwise records the change, fires `onIdentityChanged` (once per new key) and throws.
   */
  async checkAccountKey(userId: number, username: string, accountKey: Bytes): Promise<Bytes> {
    const pin = await this.pin(userId);
    if (!pin) {
      await this.store.set(this.pinKey(userId), {
        userId,
        username,
        accountKey,
        pinnedAt: new Date().toISOString(),
        changedTo: null,
        flagged: false,
      } satisfies PinRecord);
      return accountKey;
    }
    if (equalBytes(pin.accountKey, accountKey) && !pin.flagged) return pin.accountKey;
    if (!equalBytes(pin.accountKey, accountKey) && !(pin.changedTo && equalBytes(pin.changedTo, accountKey))) {
      await this.store.set(this.pinKey(userId), { ...pin, changedTo: accountKey });
      this.emit(pin, accountKey);
    }
    throw new IdentityChangedError(userId, pin.username);
  }

  /** An `identityChanged` frame: the user is blocked until trusted again, and the app is told. */
  async flag(userId: number, current: Bytes | null): Promise<void> {
    const pin = await this.pin(userId);
    if (!pin) return; // never pinned: the next lookup pins whatever is current
    if (pin.flagged && (current === null || (pin.changedTo && equalBytes(pin.changedTo, current)))) return;
    await this.store.set(this.pinKey(userId), { ...pin, flagged: true, changedTo: current ?? pin.changedTo });
    this.emit(pin, current);
  }

  /** Accepts the user's current account key (the changed one, if any) and unblocks them. */
  async trust(userId: number): Promise<void> {
    const pin = await this.pin(userId);
    if (!pin) return;
    const accountKey = pin.changedTo ?? pin.accountKey;
    await this.store.set(this.pinKey(userId), { ...pin, accountKey, changedTo: null, flagged: false });
  }

  async forget(userId: number): Promise<void> {
    await this.store.delete(this.pinKey(userId));
  }

  /** Verifies each device against the user's account key (already pinned and checked) and remembers it. */
  async verifyDevices(
    user: { userId: number; username: string; accountKey: Bytes },
    devices: Device[],
  ): Promise<VerifiedDeviceRecord[]> {
    const out: VerifiedDeviceRecord[] = [];
    for (const device of devices) {
      if (device.userId !== user.userId) throw new UnknownDeviceError(`device ${device.deviceId} is someone else's`);
      const record: VerifiedDeviceRecord = {
        deviceId: device.deviceId,
        userId: user.userId,
        username: user.username,
        identityKey: fromBase64(device.identityKey),
        signingKey: fromBase64(device.signingKey),
        accountKey: user.accountKey,
      };
      const known = await this.device(device.deviceId);
      if (!(known && equalBytes(known.accountKey, user.accountKey) && sameKeys(known, record))) {
        const signature = device.signature === null ? null : fromBase64(device.signature);
        await verifyDeviceSignature(user.accountKey, record, signature);
        await this.store.set(this.deviceKey(device.deviceId), record);
      }
      out.push(record);
    }
    return out;
  }

  device(deviceId: number): Promise<VerifiedDeviceRecord | undefined> {
    return this.store.get<VerifiedDeviceRecord>(this.deviceKey(deviceId));
  }

  /** `GET /users/{username}`, its account key checked against the pin, every device verified. */
  async user(username: string): Promise<{ user: PublicUser; devices: VerifiedDeviceRecord[] }> {
    const user = await this.http.request<PublicUser>("GET", `/users/${encodeURIComponent(username)}`);
    const accountKey = await this.checkAccountKey(user.userId, user.username, fromBase64(user.accountKey));
    const devices = await this.verifyDevices({ ...user, accountKey }, user.devices);
    return { user, devices };
  }

  /** Every active device of every participant (`GET /conversations/{id}/devices`), each verified. */
  async conversationDevices(conversationId: number): Promise<VerifiedDeviceRecord[]> {
    const listed = await this.http.request<ConversationDevice[]>("GET", `/conversations/${conversationId}/devices`);
    const byUser = new Map<number, ConversationDevice[]>();
    for (const d of listed) byUser.set(d.userId, [...(byUser.get(d.userId) ?? []), d]);
    const out: VerifiedDeviceRecord[] = [];
    for (const [userId, devices] of byUser) {
      const username = devices[0]!.username;
      const pin = await this.pin(userId);
      let accountKey: Bytes;
      if (pin && !pin.flagged && !pin.changedTo) accountKey = pin.accountKey;
      else if (pin) throw new IdentityChangedError(userId, pin.username);
      else accountKey = fromBase64((await this.user(username)).user.accountKey);
      out.push(...(await this.verifyDevices({ userId, username, accountKey }, devices)));
    }
    return out;
  }

  /** A verified device by id, looked up in the conversation (then the user) when not known yet. */
  async findDevice(
    deviceId: number,
    hint: { conversationId?: number; username?: string | null },
  ): Promise<VerifiedDeviceRecord> {
    const known = await this.device(deviceId);
    if (known) return known;
    if (hint.conversationId !== undefined) {
      const found = (await this.conversationDevices(hint.conversationId)).find((d) => d.deviceId === deviceId);
      if (found) return found;
    }
    if (hint.username) {
      const found = (await this.user(hint.username)).devices.find((d) => d.deviceId === deviceId);
      if (found) return found;
    }
    throw new UnknownDeviceError(`device ${deviceId} is not a verified device of a known user`);
  }
}

function sameKeys(a: VerifiedDeviceRecord, b: VerifiedDeviceRecord): boolean {
  return equalBytes(a.identityKey, b.identityKey) && equalBytes(a.signingKey, b.signingKey);
}
