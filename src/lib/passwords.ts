/** PBKDF2-SHA-256 at 100,000 iterations: the most Cloudflare's production runtime accepts. */
export const PASSWORD_ALGORITHM = "PBKDF2-SHA256";
export const PASSWORD_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;

export interface PasswordHash {
  hash: Uint8Array;
  salt: Uint8Array;
  algorithm: string;
  iterations: number;
}

export async function derivePasswordHash(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, HASH_BITS);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derivePasswordHash(password, salt, PASSWORD_ITERATIONS);
  return { hash, salt, algorithm: PASSWORD_ALGORITHM, iterations: PASSWORD_ITERATIONS };
}

// Stands in for the stored hash of an unknown username so that login does the same work either way.
const UNKNOWN_USER: PasswordHash = {
  hash: new Uint8Array(HASH_BITS / 8),
  salt: new Uint8Array(SALT_BYTES),
  algorithm: PASSWORD_ALGORITHM,
  iterations: PASSWORD_ITERATIONS,
};

/** Compares in constant time; with `stored` undefined it still spends one full derivation. */
export async function verifyPassword(password: string, stored: PasswordHash | undefined): Promise<boolean> {
  const reference = stored ?? UNKNOWN_USER;
  if (reference.algorithm !== PASSWORD_ALGORITHM) return false;
  const candidate = await derivePasswordHash(password, reference.salt, reference.iterations);
  const same =
    candidate.byteLength === reference.hash.byteLength && crypto.subtle.timingSafeEqual(candidate, reference.hash);
  return same && stored !== undefined;
}

export function needsRehash(stored: PasswordHash): boolean {
  return stored.algorithm !== PASSWORD_ALGORITHM || stored.iterations < PASSWORD_ITERATIONS;
}
