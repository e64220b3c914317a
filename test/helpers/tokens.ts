import { SignJWT, UnsecuredJWT } from "jose";

// The literal of vitest.config.ts's TEST_JWT_SECRET: Node-side config is not imported into the Worker runtime.
export const TEST_JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long";
export const TEST_ISSUER = "parley";
export const TEST_AUDIENCE = "parley-clients";

export interface TokenOptions {
  secret?: string;
  alg?: "HS256" | "HS384" | "HS512";
  issuer?: string;
  audience?: string;
  /** Seconds since the epoch. */
  issuedAt?: number;
  /** Seconds since the epoch; `null` leaves the claim out. */
  expiresAt?: number | null;
  sub?: string;
  typ?: string;
  did?: unknown;
  sid?: unknown;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * A token like the server's own, for `user`; each option changes one thing, so a refused token
 * is refused for that reason alone.
 */
export async function signToken(
  user: { userId: number; deviceId: number; sessionId: number },
  options: TokenOptions = {},
): Promise<string> {
  const claims = {
    did: "did" in options ? options.did : user.deviceId,
    sid: "sid" in options ? options.sid : user.sessionId,
  };
  const jwt = new SignJWT(claims as Record<string, unknown>)
    .setProtectedHeader({ alg: options.alg ?? "HS256", typ: options.typ ?? "at+jwt" })
    .setSubject(options.sub ?? String(user.userId))
    .setIssuer(options.issuer ?? TEST_ISSUER)
    .setAudience(options.audience ?? TEST_AUDIENCE)
    .setIssuedAt(options.issuedAt ?? now());
  if (options.expiresAt !== null) jwt.setExpirationTime(options.expiresAt ?? now() + 3600);
  return jwt.sign(new TextEncoder().encode(options.secret ?? TEST_JWT_SECRET));
}

/** The same claims with `alg: none` and no signature. */
export function unsignedToken(user: { userId: number; deviceId: number; sessionId: number }): string {
  return new UnsecuredJWT({ did: user.deviceId, sid: user.sessionId })
    .setSubject(String(user.userId))
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime("1h")
    .encode();
}
