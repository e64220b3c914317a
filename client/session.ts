/**
 * Sessions: the access token (short-lived JWT) and the single-use refresh token that renews it.
 * The password is never kept: it goes into one login request and is dropped. The access token is
 * renewed with `POST /auth/refresh` when it has less than a minute left (or at once after a 401),
 * one refresh at a time, and across tabs under the store's lock: another tab may already have
 * spent the refresh token, in which case its new tokens are taken from the store instead of
 * spending the old one again (which the server would treat as theft and end the session).
 *
 * A refresh answered 401 means the session is over (logged out elsewhere, revoked, expired, or the
 * refresh token reused): the session is dropped from the store and `onEnded` is called once.
 */
import type { Session } from "../contract/index.ts";
import { type HttpTransport, ParleyError } from "./http.ts";
import type { ClientStore, SessionRecord } from "./store.ts";

/** Why a session ended, as `onSessionEnded` reports it. */
export type SessionEndReason =
  /** `POST /auth/refresh` answered 401: revoked, expired, or ended from another device. */
  | "refresh-refused"
  /** A socket was closed with 4001 (session ended or device revoked). */
  | "session-ended"
  /** `logout()` was called. */
  | "logout";

export interface SessionEnded {
  reason: SessionEndReason;
  message: string;
}

/** Access tokens are renewed this long before they expire. */
export const REFRESH_MARGIN_MS = 60_000;

export class SessionManager {
  private record: SessionRecord | undefined;
  private inflight: Promise<string> | undefined;
  private ended = false;
  private readonly http: HttpTransport;
  private readonly store: ClientStore;
  private readonly storeKey: () => string;
  private readonly onEnded: (info: SessionEnded) => void;
  private readonly now: () => number;

  constructor(deps: {
    http: HttpTransport;
    store: ClientStore;
    storeKey: () => string;
    onEnded: (info: SessionEnded) => void;
    now?: () => number;
  }) {
    this.http = deps.http;
    this.store = deps.store;
    this.storeKey = deps.storeKey;
    this.onEnded = deps.onEnded;
    this.now = deps.now ?? Date.now;
  }

  private toRecord(s: Session): SessionRecord {
    const now = this.now();
    return {
      sessionId: s.sessionId,
      deviceId: s.deviceId,
      accessToken: s.accessToken,
      accessExpiresAt: now + s.expiresIn * 1000,
      refreshToken: s.refreshToken,
      refreshExpiresAt: now + s.refreshExpiresIn * 1000,
    };
  }

  /** Adopts a session the server just issued (login, reset) and persists it. */
  async start(session: Session): Promise<void> {
    this.ended = false;
    this.record = this.toRecord(session);
    await this.store.set(this.storeKey(), this.record);
  }

  /** Loads a stored session (after a reload); false when there is none, or it is past its refresh expiry. */
  async resume(): Promise<boolean> {
    const stored = await this.store.get<SessionRecord>(this.storeKey());
    if (!stored || stored.refreshExpiresAt <= this.now()) return false;
    this.ended = false;
    this.record = stored;
    return true;
  }

  get active(): boolean {
    return this.record !== undefined && !this.ended;
  }

  get sessionId(): number | undefined {
    return this.record?.sessionId;
  }

  /** A valid access token, renewed first when less than a minute is left or when `forceRefresh`. */
  async getToken(options: { forceRefresh: boolean } = { forceRefresh: false }): Promise<string> {
    const record = this.record;
    if (!record || this.ended) throw new ParleyError(401, "unauthorized", "not logged in, or the session ended");
    if (!options.forceRefresh && record.accessExpiresAt - this.now() > REFRESH_MARGIN_MS) return record.accessToken;
    const stale = record.accessToken;
    this.inflight ??= this.withLock(() => this.refresh(stale)).finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private withLock<T>(fn: () => Promise<T>): Promise<T> {
    return this.store.withLock ? this.store.withLock("session-refresh", fn) : fn();
  }

  private async refresh(stale: string): Promise<string> {
    // Another tab (or an earlier call) may have refreshed already: use its tokens, do not spend ours again.
    const stored = await this.store.get<SessionRecord>(this.storeKey());
    if (
      stored &&
      stored.sessionId === this.record?.sessionId &&
      stored.accessToken !== stale &&
      stored.accessExpiresAt - this.now() > REFRESH_MARGIN_MS
    ) {
      this.record = stored;
      return stored.accessToken;
    }
    const refreshToken = stored?.refreshToken ?? this.record?.refreshToken;
    if (!refreshToken || this.ended) throw new ParleyError(401, "unauthorized", "the session ended");
    let session: Session;
    try {
      session = await this.http.request<Session>("POST", "/auth/refresh", { auth: false, body: { refreshToken } });
    } catch (err) {
      if (err instanceof ParleyError && err.status === 401) {
        await this.end("refresh-refused", "the session ended: log in again");
      }
      throw err;
    }
    this.record = this.toRecord(session);
    await this.store.set(this.storeKey(), this.record);
    return session.accessToken;
  }

  /** Drops the session (memory and store) and reports it once. */
  async end(reason: SessionEndReason, message: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.record = undefined;
    await this.store.delete(this.storeKey());
    try {
      this.onEnded({ reason, message });
    } catch {
      // The app's handler must not break the library.
    }
  }
}
