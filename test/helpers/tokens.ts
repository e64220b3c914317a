import { SignJWT } from "jose";

/** The secret vitest.config.ts binds as JWT_SECRET (duplicated: Node config is not importable here). */
export const TEST_SECRET = "test-secret-that-is-at-least-32-bytes-long";
export const TEST_ISSUER = "parley";
export const TEST_AUDIENCE = "parley-clients";

export interface SignOptions {
  secret?: string;
  alg?: string;
  issuer?: string;
  audience?: string;
  /** Expiry in seconds since the epoch; default one hour from now. */
  expiresAt?: number;
}

/** Signs a token as the server would, with any part overridable to forge a bad one. */
export async function signToken(claims: Record<string, unknown>, options: SignOptions = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
    .setIssuer(options.issuer ?? TEST_ISSUER)
    .setAudience(options.audience ?? TEST_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(options.secret ?? TEST_SECRET));
}
