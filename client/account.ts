/**
 * The account half of `ParleyClient`: register, log in (a known device, or a new one that waits
 * for approval), sessions, device approval and provisioning, identity pinning. `ParleyClient`
 * (client.ts) adds conversations, messages and sockets on top.
 */
import type {
  ApprovalKey,
  ApproveDeviceRequest,
  Conversation,
  OwnDevice,
  Provisioning,
  PublicUser,
  Registered,
  Session,
  SessionInfo,
  User,
} from "../contract/index.ts";
import { type Bytes, equalBytes, fromBase64, toBase64 } from "./bytes.ts";
import {
  comparisonCode,
  exportAccountPrivateKey,
  generateAccountKeys,
  generateDeviceKeys,
  importAccountKeys,
  signDevice,
  verifyDeviceSignature,
} from "./crypto/keys.ts";
import { openProvisioning, sealProvisioning, UNBOUND_CONVERSATION } from "./crypto/wrap.ts";
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

/** A device of the caller's waiting for approval, with the code to compare with its screen. */
export type PendingDevice = OwnDevice & { comparisonCode: string };

export class AccountClient {
  readonly http: HttpTransport;
  protected readonly store: ClientStore;
  protected readonly options: AccountClientOptions;
  protected readonly session: SessionManager;
  protected readonly directory: Directory;
  protected readonly keyring: KeyRing;
  protected device: DeviceRecord | undefined;
  private approvalWaiters: (() => void)[] = [];

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

  private status(): AccountStatus {
    const d = this.device!;
    return { userId: d.userId, username: d.username, deviceId: d.deviceId, status: d.status, comparisonCode: null };
  }

  private async saveDevice(record: DeviceRecord): Promise<void> {
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

  /** Devices waiting for approval, each with the code its own screen shows. */
  async pendingDevices(): Promise<PendingDevice[]> {
    const accountKey = this.activeDevice().account.publicKeyRaw;
    const out: PendingDevice[] = [];
    for (const d of await this.devices()) {
      if (d.status !== "pending") continue;
      const keys = { identityKey: fromBase64(d.identityKey), signingKey: fromBase64(d.signingKey) };
      out.push({ ...d, comparisonCode: await comparisonCode(accountKey, keys) });
    }
    return out;
  }

  /** Every conversation (all pages of `GET /conversations`). */
  async allConversations(): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let cursor: string | null = null;
    do {
      const qs: string = cursor === null ? "?limit=100" : `?limit=100&cursor=${encodeURIComponent(cursor)}`;
      const page = await this.http.request<{ conversations: Conversation[]; nextCursor: string | null }>(
        "GET",
        `/conversations${qs}`,
      );
      all.push(...page.conversations);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return all;
  }

  /**
   * Approves a pending device of this account (run on an active device, after the user compared
   * the codes: pass the one the new device shows as `comparisonCode` to have it checked here).
   * Signs its keys with the account key, seals the account key to it, and wraps the current key
   * of every conversation for it.
   */
  async approveDevice(deviceId: number, options: { comparisonCode?: string } = {}): Promise<OwnDevice> {
    const self = this.activeDevice();
    const accountPrivate = self.account.privateKey;
    if (!accountPrivate) throw new Error("this device does not hold the account key");
    const target = (await this.pendingDevices()).find((d) => d.deviceId === deviceId);
    if (!target) throw new ParleyError(409, "conflict", `device ${deviceId} is not a pending device of this account`);
    if (
      options.comparisonCode !== undefined &&
      normalise(options.comparisonCode) !== normalise(target.comparisonCode)
    ) {
      throw new Error("the comparison codes differ: do not approve this device");
    }
    const pub = { identityKey: fromBase64(target.identityKey), signingKey: fromBase64(target.signingKey) };
    const account = { privateKey: accountPrivate, publicKeyRaw: self.account.publicKeyRaw };
    const pkcs8 = await exportAccountPrivateKey(account);
    const provisioning = await sealProvisioning(
      { accountPublicKey: account.publicKeyRaw, accountPrivateKeyPkcs8: pkcs8 },
      { userId: self.userId, deviceId, identityKey: pub.identityKey },
    );
    pkcs8.fill(0);
    const recipient = {
      deviceId,
      userId: self.userId,
      username: self.username,
      identityKey: pub.identityKey,
      signingKey: pub.signingKey,
      accountKey: account.publicKeyRaw,
    };
    const keys: ApprovalKey[] = [];
    for (const conversation of await this.allConversations()) {
      const { conversationId, key } = conversation;
      if (!key) throw new Error(`this device holds no current key of conversation ${conversationId}`);
      const { raw, bound } = await this.keyring.unwrap(conversationId, key);
      try {
        // A key this device holds only from a creation wrap is passed on as one (see docs/client.md).
        const binding = { conversationId: bound ? conversationId : UNBOUND_CONVERSATION, epoch: key.epoch };
        const [wrap] = await this.keyring.wrapFor(raw, [recipient], binding);
        keys.push({ conversationId, epoch: key.epoch, wrappedKey: wrap!.wrappedKey, signature: wrap!.signature });
      } finally {
        raw.fill(0);
      }
    }
    const body: ApproveDeviceRequest = {
      signature: toBase64(await signDevice(account, pub)),
      provisioning: toBase64(provisioning),
      keys,
    };
    return this.http.request<OwnDevice>("POST", `/devices/${deviceId}/approve`, { body });
  }

  /**
   * On a pending device: resolves once it is approved and provisioned. Polls `GET /devices`
   * (every `pollIntervalMs`, default 3 s) and wakes early on a `deviceApproved` frame seen by
   * `watchInbox()`.
   */
  async waitForApproval(options: { signal?: AbortSignal; pollIntervalMs?: number } = {}): Promise<AccountStatus> {
    for (;;) {
      if (!this.device) throw new Error("not logged in");
      if (this.device.status === "active") return this.status();
      const mine = (await this.devices()).find((d) => d.deviceId === this.device!.deviceId);
      if (mine?.status === "active") return this.completeApproval();
      options.signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(done, options.pollIntervalMs ?? 3_000);
        function done() {
          clearTimeout(timer);
          options.signal?.removeEventListener("abort", abort);
          resolve();
        }
        const abort = () => {
          clearTimeout(timer);
          reject(options.signal?.reason);
        };
        options.signal?.addEventListener("abort", abort, { once: true });
        this.approvalWaiters.push(done);
      });
    }
  }

  protected wakeApprovalWaiters(): void {
    const waiters = this.approvalWaiters;
    this.approvalWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Reads and opens this device's provisioning envelope: the account key must be the private half
   * of the account key pinned at login, and this device's signature (made by the approver) must
   * verify against it. Then this device is active.
   */
  async completeApproval(): Promise<AccountStatus> {
    const d = this.device;
    if (!d) throw new Error("not logged in");
    if (d.status === "active" && d.account.privateKey) return this.status();
    const { provisioning } = await this.http.request<Provisioning>("GET", `/devices/${d.deviceId}/provisioning`);
    const payload = await openProvisioning(fromBase64(provisioning), {
      userId: d.userId,
      deviceId: d.deviceId,
      privateKey: d.keys.identity.privateKey,
      publicKeyRaw: d.keys.identity.publicKeyRaw,
    });
    if (!equalBytes(payload.accountPublicKey, d.account.publicKeyRaw)) {
      throw new Error("the provisioned account key is not the one this device was shown: refusing it");
    }
    const account = await importAccountKeys(payload.accountPrivateKeyPkcs8, payload.accountPublicKey);
    payload.accountPrivateKeyPkcs8.fill(0);
    const mine = (await this.devices()).find((x) => x.deviceId === d.deviceId);
    const signature = mine?.signature ? fromBase64(mine.signature) : null;
    const pub = { identityKey: d.keys.identity.publicKeyRaw, signingKey: d.keys.signing.publicKeyRaw };
    await verifyDeviceSignature(account.publicKeyRaw, pub, signature);
    await this.saveDevice({
      ...d,
      status: "active",
      account: { publicKeyRaw: account.publicKeyRaw, privateKey: account.privateKey },
    });
    return this.status();
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

const normalise = (code: string) => code.replace(/\s+/g, "");
