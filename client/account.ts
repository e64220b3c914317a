/**
 * The account half of `ParleyClient`: register, log in (a known device, or a new one that waits
 * for approval), sessions, device approval and provisioning, identity pinning. `ParleyClient`
 * (client.ts) adds conversations, messages and sockets on top.
 */
import type { OwnDevice, PublicUser, Registered, Session, SessionInfo, User } from "../contract/index.ts";
import { type Bytes, fromBase64, toBase64 } from "./bytes.ts";
import { comparisonCode, generateAccountKeys, generateDeviceKeys, signDevice } from "./crypto/keys.ts";
import { type FetchLike, HttpTransport, ParleyError, type RetryPolicy } from "./http.ts";
import { KeyRing } from "./keyring.ts";
import { type SessionEnded, SessionManager } from "./session.ts";
import { type ClientStore, type DeviceRecord, MemoryStore, type PinRecord } from "./store.ts";
import { Directory, type IdentityChangedEvent } from "./trust.ts";

export interface AccountClientOptions {
  /** Where the Parley Worker answers, e.g. `https://parley.example.com`. */
  baseUrl: string;
  fetch?: FetchLike;
  retry?: Partial<RetryPolicy>;
  /** Where the session and keys live (default: memory; browsers: `new IndexedDBStore()`). */
  store?: ClientStore;
  /** Default name of a new device, e.g. "Firefox on laptop". */
  deviceName?: string;
  /** The session ended (refresh refused, socket closed 4001, or `logout()`): log in again. */
  onSessionEnded?: (info: SessionEnded) => void;
  /** A contact's account key changed: show a safety warning; `trustIdentity(userId)` accepts it. */
  onIdentityChanged?: (event: IdentityChangedEvent) => void;
  /** Errors that stop nothing (a wrap that does not verify among good ones, a failed background lookup). */
  onError?: (error: unknown) => void;
  /** For tests: the clock. */
  now?: () => number;
}

/** Where this device stands after `register`, `login` or `resume`. */
export interface AccountStatus {
  userId: number;
  username: string;
  deviceId: number;
  status: "active" | "pending";
  /** For a pending device: the code to compare with the one the approving device shows. */
  comparisonCode: string | null;
}

export class AccountClient {
  readonly http: HttpTransport;
  protected readonly store: ClientStore;
  protected readonly options: AccountClientOptions;
  protected readonly session: SessionManager;
  protected readonly directory: Directory;
  protected readonly keyring: KeyRing;
  protected device: DeviceRecord | undefined;

  constructor(options: AccountClientOptions) {
    this.options = options;
    this.store = options.store ?? new MemoryStore();
    this.http = new HttpTransport({
      baseUrl: options.baseUrl,
      getToken: (o) => this.session.getToken(o),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
    });
    this.session = new SessionManager({
      http: this.http,
      store: this.store,
      storeKey: () => `${this.prefix()}session`,
      onEnded: (info) => options.onSessionEnded?.(info),
      ...(options.now ? { now: options.now } : {}),
    });
    this.directory = new Directory({
      store: this.store,
      prefix: () => this.prefix(),
      http: this.http,
      onIdentityChanged: (e) => options.onIdentityChanged?.(e),
    });
    this.keyring = new KeyRing({
      http: this.http,
      store: this.store,
      prefix: () => this.prefix(),
      directory: this.directory,
      self: () => this.activeDevice(),
      onError: (e) => this.reportError(e),
    });
  }

  protected reportError(error: unknown): void {
    try {
      this.options.onError?.(error);
    } catch {
      // Never let the app's handler break the library.
    }
  }

  private prefixFor = (username: string) => `${username.toLowerCase()}/`;
  protected prefix(): string {
    if (!this.device) throw new Error("not logged in");
    return this.prefixFor(this.device.username);
  }

  protected activeDevice(): DeviceRecord {
    if (!this.device) throw new Error("not logged in");
    if (this.device.status !== "active") throw new ParleyError(403, "forbidden", "this device is not approved yet");
    return this.device;
  }

  get userId(): number | undefined {
    return this.device?.userId;
  }
  get username(): string | undefined {
    return this.device?.username;
  }
  get deviceId(): number | undefined {
    return this.device?.deviceId;
  }

  protected status(): AccountStatus {
    const d = this.device!;
    return { userId: d.userId, username: d.username, deviceId: d.deviceId, status: d.status, comparisonCode: null };
  }

  protected async saveDevice(record: DeviceRecord): Promise<void> {
    this.device = record;
    await this.store.set(`${this.prefixFor(record.username)}device`, record);
    await this.store.set("current-user", record.username.toLowerCase());
  }

  private async postLogin(body: unknown): Promise<Session> {
    return this.http.request<Session>("POST", "/auth/login", { auth: false, body });
  }

  /**
   * Creates the account: an account key, this device's keys signed by it, then a session on this
   * device. The password is sent, never kept.
   */
  async register(username: string, password: string, options: { deviceName?: string } = {}): Promise<AccountStatus> {
    const account = await generateAccountKeys();
    const keys = await generateDeviceKeys();
    const pub = { identityKey: keys.identity.publicKeyRaw, signingKey: keys.signing.publicKeyRaw };
    const device = {
      name: this.deviceName(options),
      identityKey: toBase64(pub.identityKey),
      signingKey: toBase64(pub.signingKey),
      signature: toBase64(await signDevice(account, pub)),
    };
    const res = await this.http.request<Registered>("POST", "/auth/register", {
      auth: false,
      body: { username, password, accountKey: toBase64(account.publicKeyRaw), device },
    });
    await this.saveDevice({
      userId: res.userId,
      username: res.username,
      deviceId: res.deviceId,
      status: "active",
      keys,
      account: { publicKeyRaw: account.publicKeyRaw, privateKey: account.privateKey },
    });
    await this.directory.checkAccountKey(res.userId, res.username, account.publicKeyRaw);
    await this.session.start(await this.postLogin({ username, password, deviceId: res.deviceId }));
    return this.status();
  }

  /**
   * For someone who lost every device: a new account key and device (all old devices are revoked;
   * contacts get `identityChanged` and must trust the new key). Old conversation keys are gone.
   */
  async resetIdentity(
    username: string,
    password: string,
    options: { deviceName?: string } = {},
  ): Promise<AccountStatus> {
    const account = await generateAccountKeys();
    const keys = await generateDeviceKeys();
    const pub = { identityKey: keys.identity.publicKeyRaw, signingKey: keys.signing.publicKeyRaw };
    const session = await this.http.request<Session>("POST", "/auth/reset-identity", {
      auth: false,
      body: {
        username,
        password,
        accountKey: toBase64(account.publicKeyRaw),
        device: {
          name: this.deviceName(options),
          identityKey: toBase64(pub.identityKey),
          signingKey: toBase64(pub.signingKey),
          signature: toBase64(await signDevice(account, pub)),
        },
      },
    });
    const provisional = { userId: 0, username, deviceId: session.deviceId, status: "active" as const, keys };
    await this.saveDevice({
      ...provisional,
      account: { publicKeyRaw: account.publicKeyRaw, privateKey: account.privateKey },
    });
    await this.session.start(session);
    const me = await this.me();
    await this.saveDevice({ ...this.device!, userId: me.userId, username: me.username });
    await this.directory.forget(me.userId);
    await this.directory.checkAccountKey(me.userId, me.username, account.publicKeyRaw);
    return this.status();
  }

  private deviceName(options: { deviceName?: string }): string {
    return options.deviceName ?? this.options.deviceName ?? "Parley client";
  }

  /**
   * Logs in. On a device that holds this account's keys (from `register`, an approval, or an
   * earlier login), the session is for that device. Otherwise a new device is made and logged in
   * as **pending**: show `comparisonCode`, then `waitForApproval()` while an active device runs
   * `approveDevice()`. The password is sent, never kept.
   */
  async login(username: string, password: string, options: { deviceName?: string } = {}): Promise<AccountStatus> {
    const stored = await this.store.get<DeviceRecord>(`${this.prefixFor(username)}device`);
    if (stored) {
      const session = await this.postLogin({ username, password, deviceId: stored.deviceId });
      await this.saveDevice({ ...stored, status: session.deviceStatus });
      await this.session.start(session);
      return this.withCode(this.status());
    }
    const keys = await generateDeviceKeys();
    const session = await this.postLogin({
      username,
      password,
      device: {
        name: this.deviceName(options),
        identityKey: toBase64(keys.identity.publicKeyRaw),
        signingKey: toBase64(keys.signing.publicKeyRaw),
      },
    });
    // The user id and account key come from the server: the comparison code checks the latter.
    this.device = undefined;
    const provisional = { userId: 0, username, deviceId: session.deviceId, status: session.deviceStatus, keys };
    await this.saveDevice({ ...provisional, account: { publicKeyRaw: new Uint8Array(32), privateKey: null } });
    await this.session.start(session);
    const me = await this.me();
    const accountKey = fromBase64(me.accountKey);
    await this.saveDevice({
      ...provisional,
      userId: me.userId,
      username: me.username,
      account: { publicKeyRaw: accountKey, privateKey: null },
    });
    await this.directory.checkAccountKey(me.userId, me.username, accountKey);
    return this.withCode(this.status());
  }

  private async withCode(status: AccountStatus): Promise<AccountStatus> {
    return status.status === "pending" ? { ...status, comparisonCode: await this.comparisonCode() } : status;
  }

  /** After a reload: the stored session and keys of the last account used here (or `username`'s). */
  async resume(username?: string): Promise<AccountStatus | null> {
    const name = username ?? (await this.store.get<string>("current-user"));
    if (!name) return null;
    const stored = await this.store.get<DeviceRecord>(`${this.prefixFor(name)}device`);
    if (!stored) return null;
    this.device = stored;
    if (!(await this.session.resume())) {
      this.device = undefined;
      return null;
    }
    return this.withCode(this.status());
  }

  /** Ends this session on the server and here. The device and its keys stay (log in again later). */
  async logout(): Promise<void> {
    if (!this.session.active) return;
    try {
      await this.http.request<void>("POST", "/auth/logout", { idempotent: true });
    } catch (err) {
      this.reportError(err);
    }
    await this.session.end("logout", "logged out");
  }

  /** This device's comparison code (pending devices show it; the approver shows the same one). */
  async comparisonCode(): Promise<string> {
    const d = this.device;
    if (!d) throw new Error("not logged in");
    return comparisonCode(d.account.publicKeyRaw, {
      identityKey: d.keys.identity.publicKeyRaw,
      signingKey: d.keys.signing.publicKeyRaw,
    });
  }

  me(): Promise<User> {
    return this.http.request<User>("GET", "/users/me");
  }

  /** The caller's devices, pending and active. */
  devices(): Promise<OwnDevice[]> {
    return this.http.request<OwnDevice[]>("GET", "/devices");
  }

  /** Revokes a device (the password is needed unless it is this device). */
  async revokeDevice(deviceId: number, password?: string): Promise<void> {
    await this.http.request<void>("DELETE", `/devices/${deviceId}`, {
      body: password === undefined ? {} : { password },
    });
  }

  sessions(): Promise<SessionInfo[]> {
    return this.http.request<SessionInfo[]>("GET", "/auth/sessions");
  }

  /** Ends a session (the password is needed unless it is the current one). */
  async endSession(sessionId: number, password?: string): Promise<void> {
    await this.http.request<void>("DELETE", `/auth/sessions/${sessionId}`, {
      body: password === undefined ? {} : { password },
    });
  }

  /** A user's public record; its account key is pinned on first use and checked afterwards. */
  async lookupUser(username: string): Promise<PublicUser> {
    return (await this.directory.user(username)).user;
  }

  /** What this client pinned for a user, and whether a change awaits `trustIdentity`. */
  identity(userId: number): Promise<PinRecord | undefined> {
    return this.directory.pin(userId);
  }

  /** Accepts a user's changed account key (after the people compared safety numbers out of band). */
  trustIdentity(userId: number): Promise<void> {
    return this.directory.trust(userId);
  }

  /** An `identityChanged` frame: look the user up and raise the warning. */
  protected async identityChanged(userId: number, username: string): Promise<void> {
    let current: Bytes | null = null;
    try {
      const user = await this.http.request<PublicUser>("GET", `/users/${encodeURIComponent(username)}`);
      current = fromBase64(user.accountKey);
    } catch (err) {
      this.reportError(err);
    }
    await this.directory.flag(userId, current);
  }
}
