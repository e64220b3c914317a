/**
 * The REST transport: JSON in and out, bearer tokens, the API's error shape as `ParleyError`, and
 * retries that never duplicate anything.
 *
 * What is retried (network error, 5xx, 429) depends on whether repeating is safe: requests marked
 * `idempotent` (GETs, PUT, DELETE, and `POST /messages`, made idempotent by its `clientMessageId`)
 * are retried on all three; any other request only on 429, which the contract says changed nothing.
 * A 401 is retried once with a freshly obtained token. Delays are full-jitter exponential backoff,
 * or the server's `Retry-After` when it is longer.
 */
import { BOOKMARK_HEADER, type ErrorBody } from "../contract/index.ts";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Returns a valid access token; `forceRefresh` after the server refused the current one. */
export type TokenProvider = (options: { forceRefresh: boolean }) => Promise<string>;

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown instead. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

/** An error answer of the API (`status` and its `code`), or `network` when no answer came. */
export class ParleyError extends Error {
  override name = "ParleyError";
  readonly status: number;
  readonly code: string;
  readonly details: { path: string; message: string }[] | undefined;
  /** Seconds, from `Retry-After` on a 429. */
  readonly retryAfter: number | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    extra: { details?: { path: string; message: string }[]; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.status = status;
    this.code = code;
    this.details = extra.details;
    this.retryAfter = extra.retryAfter;
  }
}

export interface RequestOptions {
  body?: unknown;
  /** Sends the bearer token (default true). */
  auth?: boolean;
  /** Safe to repeat after an ambiguous failure (default: true for GET, PUT and DELETE). */
  idempotent?: boolean;
  signal?: AbortSignal;
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** Full jitter: a random delay between 0 and min(max, base · 2^attempt). */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

async function toError(res: Response): Promise<ParleyError> {
  const retryAfterMs = parseRetryAfter(res.headers.get("Retry-After"));
  const retryAfter = retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000);
  let body: Partial<ErrorBody> | undefined;
  try {
    body = (await res.json()) as Partial<ErrorBody>;
  } catch {
    // Not the API's JSON (a proxy's page, say).
  }
  const error = body?.error;
  return new ParleyError(
    res.status,
    error?.code ?? `http_${res.status}`,
    error?.message ?? (res.statusText || `HTTP ${res.status}`),
    {
      ...(error?.details ? { details: error.details } : {}),
      ...(retryAfter === undefined ? {} : { retryAfter }),
    },
  );
}

export class HttpTransport {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  private readonly fetchFn: FetchLike;
  private readonly getToken: TokenProvider | undefined;
  /** True when the caller gave its own `fetch` (tests, proxies): raw requests then never bypass it. */
  readonly customFetch: boolean;
  /** The server's last read-your-writes token (contract BOOKMARK_HEADER), sent back with every request. */
  private bookmark: string | undefined;

  constructor(options: { baseUrl: string; fetch?: FetchLike; getToken?: TokenProvider; retry?: Partial<RetryPolicy> }) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    const globalFetch = globalThis.fetch.bind(globalThis) as FetchLike;
    this.fetchFn = options.fetch ?? globalFetch;
    this.customFetch = options.fetch !== undefined;
    this.getToken = options.getToken;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const auth = options.auth ?? true;
    const idempotent = options.idempotent ?? ["GET", "HEAD", "PUT", "DELETE"].includes(method);
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { Accept: "application/json" };
      if (this.bookmark) headers[BOOKMARK_HEADER] = this.bookmark;
      if (auth) {
        if (!this.getToken) throw new ParleyError(401, "unauthorized", "not logged in");
        headers.Authorization = `Bearer ${await this.getToken({ forceRefresh: refreshed })}`;
      }
      if (options.body !== undefined) headers["Content-Type"] = "application/json";
      const init: RequestInit = { method, headers };
      if (options.body !== undefined) init.body = JSON.stringify(options.body);
      if (options.signal) init.signal = options.signal;
      const last = attempt + 1 >= this.retry.maxAttempts;

      let res: Response;
      try {
        res = await this.fetchFn(`${this.baseUrl}${path}`, init);
      } catch (cause) {
        if (options.signal?.aborted) throw cause;
        if (!idempotent || last) throw new ParleyError(0, "network", `${method} ${path} failed: no answer`, { cause });
        await sleep(backoffDelay(attempt, this.retry.baseDelayMs, this.retry.maxDelayMs), options.signal);
        continue;
      }

      this.keepBookmark(res);
      if (res.ok) {
        if (res.status === 204) return undefined as T;
        const text = await res.text();
        return (text === "" ? undefined : JSON.parse(text)) as T;
      }
      const error = await toError(res);
      if (res.status === 401 && auth && !refreshed) {
        refreshed = true; // Nothing was done: try once more with a token obtained afresh.
        attempt--;
        continue;
      }
      const retryable = res.status === 429 || (idempotent && res.status >= 500);
      if (!retryable || last) throw error;
      const backoff = backoffDelay(attempt, this.retry.baseDelayMs, this.retry.maxDelayMs);
      const retryAfterMs = error.retryAfter === undefined ? 0 : error.retryAfter * 1000;
      if (retryAfterMs > this.retry.maxRetryAfterMs) throw error;
      await sleep(Math.max(backoff, retryAfterMs), options.signal);
    }
  }

  /** Keeps the newest bookmark an answer carries: the next request then reads at least that new. */
  private keepBookmark(res: Response): void {
    const bookmark = res.headers.get(BOOKMARK_HEADER);
    if (bookmark) this.bookmark = bookmark;
  }

  /**
   * A request whose body or answer is not JSON (attachments): the bearer token, one retry after a
   * 401 with a fresh token, and the API's error shape as `ParleyError`; no other retry (an upload
   * body may be a one-shot stream). `send` replaces `fetch` for this request (e.g. XMLHttpRequest
   * for upload progress in browsers). Returns the successful `Response` unread.
   */
  async raw(
    method: string,
    path: string,
    options: {
      headers?: Record<string, string>;
      body?: () => BodyInit;
      signal?: AbortSignal;
      send?: FetchLike;
      extra?: Record<string, unknown>;
    } = {},
  ): Promise<Response> {
    if (!this.getToken) throw new ParleyError(401, "unauthorized", "not logged in");
    for (let refreshed = false; ; refreshed = true) {
      const headers: Record<string, string> = {
        ...options.headers,
        Authorization: `Bearer ${await this.getToken({ forceRefresh: refreshed })}`,
      };
      if (this.bookmark) headers[BOOKMARK_HEADER] = this.bookmark;
      const init: RequestInit = { method, headers, ...options.extra };
      if (options.body) init.body = options.body();
      if (options.signal) init.signal = options.signal;
      let res: Response;
      try {
        res = await (options.send ?? this.fetchFn)(`${this.baseUrl}${path}`, init);
      } catch (cause) {
        if (options.signal?.aborted) throw cause;
        throw new ParleyError(0, "network", `${method} ${path} failed: no answer`, { cause });
      }
      this.keepBookmark(res);
      if (res.ok) return res;
      if (res.status === 401 && !refreshed) continue;
      throw await toError(res);
    }
  }
}
