import { jwtVerify, SignJWT } from "jose";

/** Who a verified access token speaks for: the one identity type of routes and sockets alike. */
export interface Identity {
  userId: number;
  deviceId: number;
  sessionId: number;
  /** Token expiry, seconds since the epoch. */
  exp: number;
}

/** The token settings (`config(env).jwt`); the secret's length is checked when the config is parsed. */
export interface TokenSettings {
  secret: string;
  issuer: string;
  audience: string;
}

/** RFC 9068's media type for access tokens: a token of another kind signed with the same secret is refused. */
export const ACCESS_TOKEN_TYPE = "at+jwt";

const keys = new Map<string, Promise<CryptoKey>>();

/** The HMAC key for the secret, imported once per isolate. */
function signingKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    const raw = new TextEncoder().encode(secret);
    key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret, key);
  }
  return key;
}

export async function issueToken(
  settings: TokenSettings,
  subject: { userId: number; deviceId: number; sessionId: number },
  ttlSeconds: number,
): Promise<string> {
  return new SignJWT({ did: subject.deviceId, sid: subject.sessionId })
    .setProtectedHeader({ alg: "HS256", typ: ACCESS_TOKEN_TYPE })
    .setSubject(String(subject.userId))
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(await signingKey(settings.secret));
}

const positiveId = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 1;

/**
 * Verifies signature (HS256 only), `typ`, `exp`, `iss` and `aud`; `null` for any token that fails.
 * Whether its session is still alive is the caller's second check (see middleware/auth).
 */
export async function verifyToken(settings: TokenSettings, token: string): Promise<Identity | null> {
  const key = await signingKey(settings.secret);
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ["HS256"],
      typ: ACCESS_TOKEN_TYPE,
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ["sub", "exp", "iat"],
    });
    const userId = Number(payload.sub);
    if (!/^[1-9][0-9]*$/.test(payload.sub ?? "") || !positiveId(userId)) return null;
    if (!positiveId(payload.did) || !positiveId(payload.sid)) return null;
    return { userId, deviceId: payload.did, sessionId: payload.sid, exp: payload.exp! };
  } catch {
    return null;
  }
}
