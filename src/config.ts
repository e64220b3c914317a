import { z } from "zod";
import { shardBindings } from "./db/shards";
import { decodeBase64Loose, encodeBase64Url } from "./lib/base64url";
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
  /** Sockets one device may hold on one object (the contract's 8; benchmarks lift it to fill an object). */
  maxSocketsPerDevice: number;
  /** Conversations one user may be in; creating or joining one more answers 409. */
  maxConversationsPerUser: number;
  rateLimits: boolean;
  /** The shards that take new conversations (SHARD_PLACEMENT), each a configured `SHARD_<n>` binding. */
  shardPlacement: number[];
  attachments: AttachmentConfig;
  push: PushConfig;
}

export const MIN_SECRET_BYTES = 32;

/** The published secret of `.dev.vars.example`: anyone can sign tokens with it. */
const DEVELOPMENT_SECRET = "dev-only-secret-change-me-0123456789abcdef";

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
  REFRESH_TTL_SECONDS: positiveInt,
  MAX_CONVERSATIONS_PER_USER: positiveInt,
  MAX_SOCKETS_PER_DEVICE: positiveInt,
  ALLOWED_ORIGINS: z.string().transform((list) =>
    list
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean),
  ),
  MAX_SOCKETS_PER_OBJECT: positiveInt,
  RATE_LIMITS: z.enum(["on", "off"], { error: 'must be "on" or "off"' }),
  /** "development" only in `.dev.vars` (and the tests); wrangler.toml says "production". */
  ENVIRONMENT: z.enum(["development", "production"], { error: 'must be "development" or "production"' }),
  D1_SERVICE_TIME_MS: z.string().regex(/^(0|[1-9][0-9]{0,3})$/, "must be a whole number of milliseconds, 0 to 9999"),
  SHARD_PLACEMENT: z
    .string({ error: "is missing" })
    .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, "must list shard numbers, e.g. 0,1")
    .transform((list) => [...new Set(list.split(",").map((n) => Number(n.trim())))]),
});

const settingsSchema = (env: object) =>
  schema.superRefine((vars, ctx) => {
    const configured = shardBindings(env);
    const missing = vars.SHARD_PLACEMENT.filter((index) => !configured.has(index));
    if (missing.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["SHARD_PLACEMENT"],
        message: `names shards without a D1 binding (SHARD_${missing.join(", SHARD_")})`,
      });
    }
    developmentSecretOnlyInDevelopment(vars, ctx);
  });

function developmentSecretOnlyInDevelopment(vars: z.infer<typeof schema>, ctx: z.RefinementCtx) {
  if (vars.JWT_SECRET === DEVELOPMENT_SECRET && vars.ENVIRONMENT !== "development") {
    ctx.addIssue({
      code: "custom",
      path: ["JWT_SECRET"],
      message:
        "is the development secret of .dev.vars.example, refused outside local development (ENVIRONMENT=development)",
    });
  }
}

const HOW_TO_FIX: Record<string, string> = {
  JWT_SECRET: "set it with `wrangler secret put JWT_SECRET` (or in .dev.vars for development)",
  VAPID_PRIVATE_KEY: "set the pair with `wrangler secret put` (docs/push.md; .dev.vars.example has a development pair)",
  VAPID_PUBLIC_KEY: "set the pair with `wrangler secret put` (docs/push.md; .dev.vars.example has a development pair)",
};

const parsed = new WeakMap<object, Config>();

/**
 * The settings of `env`. A missing or bad value is a deployment error: the request fails with one
 * clear 500 and the log names the variable (never its value); there are no silent defaults.
 */
export function config(env: Env): Config {
  const cached = parsed.get(env);
  if (cached) return cached;
  const result = z.object({ base: settingsSchema(env), attachments: attachmentSchema, push: pushSchema }).safeParse({
    base: env,
    attachments: env,
    push: env,
  });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const name = String(issue.path[1]);
      console.error(`configuration: ${name} ${issue.message}${HOW_TO_FIX[name] ? `: ${HOW_TO_FIX[name]}` : ""}`);
    }
    throw new AppError("internal", "server is not configured");
  }
  const { base: vars, attachments, push } = result.data;
  const settings: Config = {
    jwt: { secret: vars.JWT_SECRET, issuer: vars.JWT_ISSUER, audience: vars.JWT_AUDIENCE },
    tokenTtlSeconds: vars.TOKEN_TTL_SECONDS,
    refreshTtlSeconds: vars.REFRESH_TTL_SECONDS,
    allowedOrigins: vars.ALLOWED_ORIGINS,
    maxSocketsPerObject: vars.MAX_SOCKETS_PER_OBJECT,
    maxSocketsPerDevice: vars.MAX_SOCKETS_PER_DEVICE,
    maxConversationsPerUser: vars.MAX_CONVERSATIONS_PER_USER,
    rateLimits: vars.RATE_LIMITS === "on",
    shardPlacement: vars.SHARD_PLACEMENT,
    attachments,
    push,
  };
  parsed.set(env, settings);
  return settings;
}

// Attachments and push (the VAPID pair is a secret, like JWT_SECRET).

export interface AttachmentConfig {
  maxAttachmentBytes: number;
  dailyBytesPerUser: number;
}

export interface PushConfig {
  /** The VAPID private key as an ES256 JWK (its `x`/`y` are the public key's). */
  privateKey: JsonWebKey;
  /** The uncompressed P-256 public key, unpadded base64url (65 bytes decoded). */
  publicKey: string;
  subject: string;
  allowInsecureEndpoints: boolean;
}

const attachmentSchema = z.object({ MAX_ATTACHMENT_BYTES: positiveInt, DAILY_BYTES_PER_USER: positiveInt }).transform(
  (v): AttachmentConfig => ({
    maxAttachmentBytes: v.MAX_ATTACHMENT_BYTES,
    dailyBytesPerUser: v.DAILY_BYTES_PER_USER,
  }),
);

const base64url = /^[A-Za-z0-9_-]+$/;
const pushSchema = z
  .object({
    VAPID_PUBLIC_KEY: z
      .string({ error: "is missing" })
      .refine((key) => base64url.test(key) && key.length === 87 && key.startsWith("B"), {
        error: "must be an uncompressed P-256 public key, unpadded base64url (87 characters)",
      }),
    VAPID_PRIVATE_KEY: z.string({ error: "is missing" }).min(1, "is missing"),
    VAPID_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)\S+$/, "must be a mailto: or https: URL"),
    PUSH_ALLOW_INSECURE_ENDPOINTS: z.enum(["on", "off"], { error: 'must be "on" or "off"' }),
  })
  .transform((v, ctx): PushConfig => {
    const privateKey = vapidJwk(v.VAPID_PRIVATE_KEY, v.VAPID_PUBLIC_KEY);
    if (!privateKey) {
      ctx.addIssue({
        code: "custom",
        path: ["VAPID_PRIVATE_KEY"],
        message: "must be a P-256 JWK or a raw base64url scalar matching VAPID_PUBLIC_KEY",
      });
      return z.NEVER;
    }
    return {
      privateKey,
      publicKey: v.VAPID_PUBLIC_KEY,
      subject: v.VAPID_SUBJECT,
      allowInsecureEndpoints: v.PUSH_ALLOW_INSECURE_ENDPOINTS === "on",
    };
  });

/** The private key as a JWK whose public half is `publicKey`, from a JWK or a raw 32-byte `d`; null if they differ. */
function vapidJwk(privateKey: string, publicKey: string): JsonWebKey | null {
  const point = decodeBase64Loose(publicKey);
  if (point?.byteLength !== 65 || point[0] !== 4) return null;
  const x = encodeBase64Url(point.subarray(1, 33));
  const y = encodeBase64Url(point.subarray(33));
  if (base64url.test(privateKey)) {
    return privateKey.length === 43 ? { kty: "EC", crv: "P-256", x, y, d: privateKey } : null;
  }
  try {
    const jwk = JSON.parse(privateKey) as JsonWebKey;
    const fits = jwk.kty === "EC" && jwk.crv === "P-256" && jwk.x === x && jwk.y === y && typeof jwk.d === "string";
    return fits ? { kty: "EC", crv: "P-256", x, y, d: jwk.d } : null;
  } catch {
    return null;
  }
}

export const attachmentConfig = (env: Env): AttachmentConfig => config(env).attachments;
export const pushConfig = (env: Env): PushConfig => config(env).push;
