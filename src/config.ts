import { z } from "zod";
import { AppError } from "./lib/errors";

/** Settings from the environment, parsed once per environment object into typed values. */
export interface Config {
  jwt: { secret: string; issuer: string; audience: string };
  /** Access-token lifetime (`expiresIn`). */
  tokenTtlSeconds: number;
  /** Refresh-token lifetime (`refreshExpiresIn`). */
  refreshTtlSeconds: number;
  /** `Origin` allow-list for `/ws`; empty allows every origin. */
  allowedOrigins: string[];
  maxSocketsPerObject: number;
  rateLimits: boolean;
}

export const MIN_SECRET_BYTES = 32;

const positiveInt = z
  .string()
  .regex(/^[1-9][0-9]{0,8}$/, "must be a positive integer")
  .transform(Number);

const schema = z.object({
  JWT_SECRET: z
    .string({ error: "is missing" })
    .refine((secret) => new TextEncoder().encode(secret).byteLength >= MIN_SECRET_BYTES, {
      error: `is shorter than ${MIN_SECRET_BYTES} bytes`,
    }),
  JWT_ISSUER: z.string().min(1, "must not be empty"),
  JWT_AUDIENCE: z.string().min(1, "must not be empty"),
  TOKEN_TTL_SECONDS: positiveInt,
  // The contract's 30 days when unset (wrangler.toml sets it; scripts/openapi.ts, owned elsewhere, does not).
  REFRESH_TTL_SECONDS: z.string().default("2592000").pipe(positiveInt),
  ALLOWED_ORIGINS: z.string().transform((list) =>
    list
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean),
  ),
  MAX_SOCKETS_PER_OBJECT: positiveInt,
  RATE_LIMITS: z.enum(["on", "off"], { error: 'must be "on" or "off"' }),
});

const HOW_TO_FIX: Record<string, string> = {
  JWT_SECRET: "set it with `wrangler secret put JWT_SECRET` (or in .dev.vars for development)",
};

const parsed = new WeakMap<object, Config>();

/**
 * The settings of `env`. A missing or bad value is a deployment error: the request fails with one
 * clear 500 and the log names the variable (never its value); there are no silent defaults.
 */
export function config(env: Env): Config {
  const cached = parsed.get(env);
  if (cached) return cached;
  const result = schema.safeParse(env);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const name = String(issue.path[0]);
      console.error(`configuration: ${name} ${issue.message}${HOW_TO_FIX[name] ? `: ${HOW_TO_FIX[name]}` : ""}`);
    }
    throw new AppError("internal", "server is not configured");
  }
  const vars = result.data;
  const settings: Config = {
    jwt: { secret: vars.JWT_SECRET, issuer: vars.JWT_ISSUER, audience: vars.JWT_AUDIENCE },
    tokenTtlSeconds: vars.TOKEN_TTL_SECONDS,
    refreshTtlSeconds: vars.REFRESH_TTL_SECONDS,
    allowedOrigins: vars.ALLOWED_ORIGINS,
    maxSocketsPerObject: vars.MAX_SOCKETS_PER_OBJECT,
    rateLimits: vars.RATE_LIMITS === "on",
  };
  parsed.set(env, settings);
  return settings;
}
