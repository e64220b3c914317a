import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { AppError } from "../lib/errors";

interface RateLimitRule {
  limiter: (env: Env) => RateLimit;
  /** The window of the binding's `simple.period` in wrangler.toml, sent as `Retry-After`. */
  periodSeconds: number;
  key: (c: Context<AppEnv>) => string;
}

/**
 * Refuses with 429 once the key has used its allowance, before the body is even validated, so a
 * limited request changes nothing. `Retry-After` is the binding's whole period: the platform does
 * not say when the current window ends, and waiting one period is always enough.
 */
export function rateLimit(rule: RateLimitRule) {
  return createMiddleware<AppEnv>(async (c, next) => {
    if (c.var.config.rateLimits) {
      const { success } = await rule.limiter(c.env).limit({ key: rule.key(c) });
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

export const authRateLimit = rateLimit({
  limiter: (env) => env.AUTH_RATE_LIMITER,
  periodSeconds: 60,
  key: (c) => `auth:${clientIp(c)}`,
});

export const messageRateLimit = rateLimit({
  limiter: (env) => env.MESSAGE_RATE_LIMITER,
  periodSeconds: 10,
  key: (c) => `messages:${c.var.user.userId}`,
});
