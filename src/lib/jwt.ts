import { jwtVerify, SignJWT } from "jose";

/** Who a verified token speaks for: the one identity type of routes and sockets alike. */
export interface Identity {
  userId: number;
  username: string;
  /** Token expiry, seconds since the epoch. */
  exp: number;
}

/** The token settings (`config(env).jwt`); the secret's length is checked when the config is parsed. */
export interface TokenSettings {
  secret: string;
  issuer: string;
  audience: string;
}

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
  user: { id: number; username: string },
  ttlSeconds: number,
): Promise<string> {
  return new SignJWT({ username: user.username })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(String(user.id))
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(await signingKey(settings.secret));
}

/** Verifies signature (HS256 only), `exp`, `iss` and `aud`; `null` for any token that fails. */
export async function verifyToken(settings: TokenSettings, token: string): Promise<Identity | null> {
  const key = await signingKey(settings.secret);
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ["HS256"],
      issuer: settings.issuer,
      audience: settings.audience,
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
