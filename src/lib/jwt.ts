import { jwtVerify, SignJWT } from "jose";
import { AppError } from "./errors";

export const MIN_SECRET_BYTES = 32;

export interface TokenClaims {
  userId: number;
  username: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

interface TokenSettings {
  JWT_SECRET?: string;
  /** "development" only where `.dev.vars` (or the tests) say so; anything else is a deployment. */
  ENVIRONMENT?: string;
  JWT_ISSUER: string;
  JWT_AUDIENCE: string;
}

const keys = new Map<string, Promise<CryptoKey>>();

/** The published secret of `.dev.vars.example`: anyone can sign tokens with it. */
const DEVELOPMENT_SECRET = "dev-only-secret-change-me-0123456789abcdef";

function notConfigured(log: string): AppError {
  console.error(log);
  return new AppError("internal", "server is not configured");
}

/**
 * The HMAC key for `JWT_SECRET`, imported once per isolate. A missing or short secret is a
 * deployment error: every request fails with 500 and the log says what to set.
 */
function signingKey(env: TokenSettings): Promise<CryptoKey> {
  const secret = env.JWT_SECRET;
  const raw = new TextEncoder().encode(secret ?? "");
  if (raw.byteLength < MIN_SECRET_BYTES) {
    throw notConfigured(
      `JWT_SECRET is missing or shorter than ${MIN_SECRET_BYTES} bytes: set it with \`wrangler secret put JWT_SECRET\` (or in .dev.vars for development)`,
    );
  }
  if (secret === DEVELOPMENT_SECRET && env.ENVIRONMENT !== "development") {
    throw notConfigured(
      "JWT_SECRET is the development secret of .dev.vars.example, refused outside local development (ENVIRONMENT=development): set a secret of your own with `wrangler secret put JWT_SECRET`",
    );
  }
  let key = keys.get(secret!);
  if (!key) {
    key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret!, key);
  }
  return key;
}

export function assertSecretConfigured(env: TokenSettings): Promise<CryptoKey> {
  return signingKey(env);
}

export async function issueToken(
  env: TokenSettings,
  user: { id: number; username: string },
  ttlSeconds: number,
): Promise<string> {
  return new SignJWT({ username: user.username })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(String(user.id))
    .setIssuer(env.JWT_ISSUER)
    .setAudience(env.JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(await signingKey(env));
}

/** Verifies signature (HS256 only), `exp`, `iss` and `aud`; `null` for any token that fails. */
export async function verifyToken(env: TokenSettings, token: string): Promise<TokenClaims | null> {
  const key = await signingKey(env);
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ["HS256"],
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      requiredClaims: ["sub", "exp"],
    });
    const userId = Number(payload.sub);
    if (!Number.isSafeInteger(userId) || userId < 1 || typeof payload.username !== "string") {
      return null;
    }
    return { userId, username: payload.username, exp: payload.exp! };
  } catch {
    return null;
  }
}
