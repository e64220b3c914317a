// A small keep-alive HTTP client for seeding and for open-loop (constant arrival rate) load.
import http from "node:http";
import { performance } from "node:perf_hooks";

export const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 512 });

/** One request; resolves `{ status, text, json() }`, or `{ status: 0, error }` on a network error. */
export interface Response {
  status: number;
  text: string;
  error?: Error;
  json(): any;
}

export interface RequestOptions {
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export function request(
  base: string,
  method: string,
  path: string,
  { body, token, headers = {}, timeoutMs = 30_000 }: RequestOptions = {},
): Promise<Response> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const url = new URL(path, base);
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: {
          ...(payload !== undefined
            ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
            : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) });
        });
        res.on("error", (error) => resolve({ status: 0, text: "", error, json: () => null }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (error) => resolve({ status: 0, text: "", error, json: () => null }));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A request that must succeed with `expect`; throws with the body otherwise. */
export async function must(
  expect: number,
  base: string,
  method: string,
  path: string,
  options?: RequestOptions,
): Promise<any> {
  const res = await request(base, method, path, options);
  if (res.status !== expect) {
    throw new Error(
      `${method} ${path}: expected ${expect}, got ${res.status} ${res.error?.message ?? res.text.slice(0, 300)}`,
    );
  }
  return res.json();
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` in flight. */
export async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await fn(i);
      }
    }),
  );
  return results;
}

/**
 * Open loop: calls `send(k, intendedAt)` at a constant rate for `durationMs`, whatever the answers
 * take (latency is measured from the intended send time, so a stalled server cannot hide slow
 * responses: no coordinated omission). Resolves with the send promises and how late the generator
 * itself ran.
 */
export async function openLoop<T>({
  rate,
  durationMs,
  send,
}: {
  rate: number;
  durationMs: number;
  send: (k: number, intendedAt: number) => Promise<T>;
}): Promise<{ sent: number; inFlight: Promise<T>[]; maxLagMs: number; elapsedMs: number }> {
  const interval = 1000 / rate;
  const total = Math.max(1, Math.round((rate * durationMs) / 1000));
  const start = performance.now() + 5;
  const inFlight: Promise<T>[] = [];
  let k = 0;
  let maxLagMs = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (k < total && start + k * interval <= now) {
        const intended = start + k * interval;
        maxLagMs = Math.max(maxLagMs, now - intended);
        inFlight.push(send(k, intended));
        k++;
      }
      if (k >= total) return resolve();
      setTimeout(tick, Math.max(0, start + k * interval - performance.now()));
    };
    tick();
  });
  return { sent: total, inFlight, maxLagMs, elapsedMs: performance.now() - start };
}

export const round = (x: number, digits = 2): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
