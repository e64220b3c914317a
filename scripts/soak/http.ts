// The soak's HTTP client: fetch with a timeout, JSON bodies, network errors as one error type.
import { type RunContext, SoakError, sleep } from "./context.ts";
import { REQUEST_TIMEOUT_MS } from "./options.ts";

export class NetworkError extends Error {}

export interface ApiResponse {
  status: number;
  body: any;
  headers: Headers;
}

export async function request(
  ctx: RunContext,
  method: string,
  path: string,
  { token, body, timeoutMs = REQUEST_TIMEOUT_MS }: { token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${ctx.server.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    throw new NetworkError(`${method} ${path.replace(/\?.*/, "")}: ${err?.cause?.code ?? err?.name ?? err}`);
  }
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON.
  }
  return { status: res.status, body: json, headers: res.headers };
}

/** For setup and the checks: retries network errors and 5xx until the hard deadline. */
export async function requestRetrying(
  ctx: RunContext,
  method: string,
  path: string,
  options?: Parameters<typeof request>[3],
): Promise<ApiResponse> {
  for (let attempt = 0; ; attempt++) {
    ctx.checkDeadline();
    try {
      const res = await request(ctx, method, path, options);
      if (res.status < 500) return res;
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
    }
    await sleep(ctx.backoff(attempt));
  }
}

export function expect(res: ApiResponse, status: number, what: string): any {
  if (res.status !== status)
    throw new SoakError(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}
