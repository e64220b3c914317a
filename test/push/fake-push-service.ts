import { env } from "cloudflare:workers";
import { vi } from "vitest";
import { decryptPush, fromBase64Url, newUserAgent, type UserAgent } from "./rfc8291";

export interface ReceivedPush {
  endpoint: string;
  plaintext: string;
  headers: Headers;
  claims: { aud: string; exp: number; sub: string };
}

/**
 * A push service standing in for the browser vendors': `fetch` is intercepted, and each request must
 * carry a VAPID JWT that verifies (ES256 against the configured public key, `aud` = the endpoint's
 * origin, `exp` within 24 hours) and a body that the subscriber's keys decrypt (test/push/rfc8291.ts).
 */
export class FakePushService {
  readonly received: ReceivedPush[] = [];
  readonly rejected: string[] = [];
  private readonly agents = new Map<string, UserAgent>();
  /** Answers per endpoint, used in order; 201 once they run out. */
  private readonly answers = new Map<string, Response[]>();

  constructor() {
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => this.handle(new Request(input, init)));
  }

  /** A new subscriber: its endpoint and the keys a browser would hand the app. */
  async subscriber(origin = "http://push.test") {
    const ua = await newUserAgent();
    const endpoint = `${origin}/send/${crypto.randomUUID()}`;
    this.agents.set(endpoint, ua);
    return { endpoint, keys: { p256dh: ua.publicKey, auth: ua.auth } };
  }

  answer(endpoint: string, ...responses: Response[]) {
    this.answers.set(endpoint, responses);
  }

  to(endpoint: string) {
    return this.received.filter((p) => p.endpoint === endpoint);
  }

  private async handle(request: Request): Promise<Response> {
    const ua = this.agents.get(request.url);
    if (!ua) return new Response("no such subscription", { status: 404 });
    try {
      const claims = await verifyVapid(request);
      if (request.headers.get("Content-Encoding") !== "aes128gcm") throw new Error("not aes128gcm");
      if (!request.headers.get("TTL")) throw new Error("no TTL");
      const { plaintext, recordSize } = await decryptPush(new Uint8Array(await request.arrayBuffer()), ua);
      if (recordSize !== 4096) throw new Error(`record size ${recordSize}`);
      const next = this.answers.get(request.url)?.shift();
      if (!next || next.ok) this.received.push({ endpoint: request.url, plaintext, headers: request.headers, claims });
      return next ?? new Response(null, { status: 201 });
    } catch (err) {
      this.rejected.push(String(err));
      return new Response(String(err), { status: 400 });
    }
  }
}

async function verifyVapid(request: Request) {
  const match = /^vapid t=([\w-]+)\.([\w-]+)\.([\w-]+), k=([\w-]+)$/.exec(request.headers.get("Authorization") ?? "");
  if (!match) throw new Error("no vapid authorization");
  const [, header, payload, signature, k] = match as unknown as string[];
  if (k !== env.VAPID_PUBLIC_KEY) throw new Error("k is not the configured public key");
  const key = await crypto.subtle.importKey("raw", fromBase64Url(k!), { name: "ECDSA", namedCurve: "P-256" }, false, [
    "verify",
  ]);
  const signed = new TextEncoder().encode(`${header}.${payload}`);
  const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, fromBase64Url(signature!), signed);
  if (!ok) throw new Error("bad ES256 signature");
  if (JSON.parse(new TextDecoder().decode(fromBase64Url(header!))).alg !== "ES256") throw new Error("alg");
  const claims = JSON.parse(new TextDecoder().decode(fromBase64Url(payload!)));
  const now = Date.now() / 1000;
  if (claims.aud !== new URL(request.url).origin) throw new Error(`aud ${claims.aud}`);
  if (!(claims.exp > now && claims.exp <= now + 24 * 3600)) throw new Error(`exp ${claims.exp}`);
  if (!/^mailto:/.test(claims.sub)) throw new Error(`sub ${claims.sub}`);
  return claims as ReceivedPush["claims"];
}
