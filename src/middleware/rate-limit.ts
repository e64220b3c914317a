import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";
import { usernameKey } from "../lib/usernames";

interface RateLimitRule {
  limiter: (env: Env) => RateLimit;
  /** The window of the binding's `simple.period` in wrangler.toml, sent as `Retry-After`. */
  periodSeconds: number;
  /** `undefined`: nothing to count this request under. */
  key: (c: Context<AppEnv>) => string | undefined | Promise<string | undefined>;
}

/**
 * Refuses with 429 once the key has used its allowance, before the body is even validated, so a
 * limited request changes nothing. `Retry-After` is the binding's whole period: the platform does
 * not say when the current window ends, and waiting one period is always enough.
 */
export function rateLimit(rule: RateLimitRule) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const key = c.var.config.rateLimits ? await rule.key(c) : undefined;
    if (key !== undefined) {
      const { success } = await rule.limiter(c.env).limit({ key });
      if (!success) {
        throw new AppError("rate_limited", "too many requests; retry later", {
          headers: { "Retry-After": String(rule.periodSeconds) },
        });
      }
    }
    await next();
  });
}

/** The client's address as Cloudflare's edge reports it (clients cannot set this header there). */
export const clientIp = (c: Context<AppEnv>) => c.req.header("CF-Connecting-IP") ?? "unknown";

/**
 * The key an address is counted under: IPv4 as is, IPv6 by its /64, since one subscriber is
 * usually given a whole /64 and could otherwise rotate through 2^64 addresses.
 */
export function addressKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  const address = ip.toLowerCase().split("%")[0]!;
  const [head = "", tail] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  // A dotted IPv4 tail stands for two groups.
  const width = (groups: string[]) => groups.length + (groups.at(-1)?.includes(".") ? 1 : 0);
  const zeros = tail === undefined ? [] : Array<string>(Math.max(0, 8 - width(left) - width(right))).fill("0");
  const prefix = [...left, ...zeros, ...right]
    .slice(0, 4)
    .map((group) => (Number.parseInt(group, 16) || 0).toString(16));
  return `${prefix.join(":")}::/64`;
}

export const authRateLimit = rateLimit({
  limiter: (env) => env.AUTH_RATE_LIMITER,
  periodSeconds: 60,
  key: (c) => `auth:${addressKey(clientIp(c))}`,
});

/**
 * Login attempts per username, from anywhere: guessing one account's password from many addresses
 * is limited too. The username is read from the (cached) body before validation; a body without
 * one is left to the validator.
 */
export const loginUsernameRateLimit = rateLimit({
  limiter: (env) => env.LOGIN_USERNAME_RATE_LIMITER,
  periodSeconds: 60,
  key: async (c) => {
    // Anything but JSON is refused (415) before a password is looked at: nothing to count.
    if (!/^application\/json\b/i.test(c.req.header("Content-Type") ?? "")) return undefined;
    const body = (await c.req.json().catch(() => null)) as { username?: unknown } | null;
    return typeof body?.username === "string" ? `login:${usernameKey(body.username)}` : undefined;
  },
});

export const messageRateLimit = rateLimit({
  limiter: (env) => env.MESSAGE_RATE_LIMITER,
  periodSeconds: 10,
  key: (c) => `messages:${c.var.user.userId}`,
});
