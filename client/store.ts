/**
 * Where the client keeps what must survive a page reload: the session (refresh token), this
 * device's keys, every epoch key it was given, the account keys it pinned, and the devices it has
 * verified. Values are plain objects that may hold `CryptoKey`s and `Uint8Array`s: a store must
 * keep them by structured clone (IndexedDB does; non-extractable keys stay non-extractable) or
 * by reference (`MemoryStore`). Keys are strings; the client prefixes them per account.
 */
import type { Bytes } from "./bytes.ts";
import type { AccountKeys, DeviceKeys } from "./crypto/keys.ts";

export interface ClientStore {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key that starts with `prefix`. */
  keys(prefix: string): Promise<string[]>;
  /**
   * Runs `fn` while holding an exclusive lock named `name` (across tabs, for a browser store), so
   * two tabs never spend the same single-use refresh token. Optional: without it, in-process only.
   */
  withLock?<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** The default: a `Map` in memory (nothing survives the process). */
export class MemoryStore implements ClientStore {
  private readonly map = new Map<string, unknown>();

  async get<T>(key: string): Promise<T | undefined> {
    return this.map.get(key) as T | undefined;
  }

  async set(key: string, value: unknown): Promise<void> {
    this.map.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }

  async keys(prefix: string): Promise<string[]> {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix));
  }

  /** For tests: every value held. */
  values(): unknown[] {
    return [...this.map.values()];
  }
}

// ---- what the client stores (per account, under `<username>/`) ----

/** `device`: this device's identity, its keys and the account key. */
export interface DeviceRecord {
  userId: number;
  username: string;
  deviceId: number;
  status: "active" | "pending";
  keys: DeviceKeys;
  /** The account key pair; the private half only once this device is active. */
  account: { publicKeyRaw: Bytes; privateKey: CryptoKey | null };
}

/** `session`: the current session. Never a password. */
export interface SessionRecord {
  sessionId: number;
  deviceId: number;
  accessToken: string;
  /** Epoch milliseconds. */
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
}

/** `epoch/<conversationId>/<epoch>`: an epoch key, non-extractable. */
export interface EpochKeyRecord {
  key: CryptoKey;
  /**
   * False for a creation wrap (bound to conversation 0) made by another device: readable, but
   * this device rotates before sending under it (see docs/client.md).
   */
  bound: boolean;
}

/** `pin/<userId>`: the account key pinned on first use, and a different one seen since. */
export interface PinRecord {
  userId: number;
  username: string;
  accountKey: Bytes;
  pinnedAt: string;
  /** A different account key the server now reports (not trusted until `trustIdentity`). */
  changedTo: Bytes | null;
  /** An `identityChanged` frame arrived and the new key was not yet accepted. */
  flagged: boolean;
}

/** `device/<deviceId>`: a device whose signature verified against its user's pinned account key. */
export interface VerifiedDeviceRecord {
  deviceId: number;
  userId: number;
  username: string;
  identityKey: Bytes;
  signingKey: Bytes;
  /** The account key it was verified against. */
  accountKey: Bytes;
}

export type { AccountKeys };
