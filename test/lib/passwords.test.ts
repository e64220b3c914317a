import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  derivePasswordHash,
  hashPassword,
  PASSWORD_ALGORITHM,
  PASSWORD_ITERATIONS,
  verifyPassword,
} from "../../src/lib/passwords";
import { call, registerUser } from "../helpers/api";

// Cloudflare's production runtime refuses PBKDF2 above this; local workerd does not, so tests must.
const PRODUCTION_PBKDF2_CAP = 100_000;

/** Records the PBKDF2 parameters of every `deriveBits` call while still running it. */
function spyOnPbkdf2() {
  const spy = vi.spyOn(crypto.subtle, "deriveBits");
  return () =>
    spy.mock.calls.map(([algorithm]) => algorithm as SubtleCryptoDeriveKeyAlgorithm).filter((a) => a.name === "PBKDF2");
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** PBKDF2-SHA-256 computed here, independently of the code under test. */
async function referencePbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(
    await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256),
  );
}

describe("hashPassword", () => {
  it("uses PBKDF2-SHA-256 with at most 100,000 iterations and a 16-byte salt", async () => {
    const pbkdf2Calls = spyOnPbkdf2();
    const stored = await hashPassword("correct horse battery");
    expect(stored.algorithm).toBe("PBKDF2-SHA256");
    expect(stored.iterations).toBeLessThanOrEqual(PRODUCTION_PBKDF2_CAP);
    expect(stored.iterations).toBeGreaterThanOrEqual(100_000);
    expect(stored.salt).toBeInstanceOf(Uint8Array);
    expect(stored.salt.byteLength).toBe(16);
    expect(stored.hash.byteLength).toBe(32);
    const calls = pbkdf2Calls();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.iterations).toBeLessThanOrEqual(PRODUCTION_PBKDF2_CAP);
    expect(calls[0]!.hash).toBe("SHA-256");
  });

  it("stores parameters that reproduce the hash, so it can be verified and upgraded later", async () => {
    const stored = await hashPassword("correct horse battery");
    expect(await referencePbkdf2("correct horse battery", stored.salt, stored.iterations)).toEqual(stored.hash);
  });

  it("salts each hash afresh", async () => {
    const [a, b] = await Promise.all([hashPassword("same password"), hashPassword("same password")]);
    expect(a.salt).not.toEqual(b.salt);
    expect(a.hash).not.toEqual(b.hash);
  });
});

describe("verifyPassword", () => {
  it("accepts the right password and refuses any other", async () => {
    const stored = await hashPassword("correct horse battery");
    expect(await verifyPassword("correct horse battery", stored)).toBe(true);
    expect(await verifyPassword("correct horse batterY", stored)).toBe(false);
    expect(await verifyPassword("", stored)).toBe(false);
  });

  it("verifies a hash made with other stored iterations", async () => {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const stored = {
      hash: await referencePbkdf2("old password", salt, 1000),
      salt,
      algorithm: PASSWORD_ALGORITHM,
      iterations: 1000,
    };
    expect(await verifyPassword("old password", stored)).toBe(true);
    expect(await verifyPassword("old passwords", stored)).toBe(false);
  });

  it("refuses a hash stored under an unknown algorithm", async () => {
    const stored = await hashPassword("correct horse battery");
    expect(await verifyPassword("correct horse battery", { ...stored, algorithm: "MD5" })).toBe(false);
  });

  it("returns false for an unknown user, after one full-cost derivation like a real check", async () => {
    const pbkdf2Calls = spyOnPbkdf2();
    expect(await verifyPassword("correct horse battery", undefined)).toBe(false);
    expect(await verifyPassword("", undefined)).toBe(false);
    const calls = pbkdf2Calls();
    expect(calls).toHaveLength(2);
    for (const params of calls) expect(params.iterations).toBe(PASSWORD_ITERATIONS);
  });
});

describe("stored password rows", () => {
  const row = (username: string) =>
    env.DIRECTORY.prepare(
      "select password_algorithm as algorithm, password_iterations as iterations, length(password_salt) as saltBytes, password_hash as hash from users where username = ?",
    )
      .bind(username)
      .first<{ algorithm: string; iterations: number; saltBytes: number; hash: ArrayBuffer }>();

  it("keeps the algorithm and parameters beside the hash, within Cloudflare's cap", async () => {
    const user = await registerUser("stored");
    const stored = await row(user.username);
    expect(stored).toMatchObject({ algorithm: "PBKDF2-SHA256", saltBytes: 16 });
    expect(stored!.iterations).toBeLessThanOrEqual(PRODUCTION_PBKDF2_CAP);
    expect(stored!.iterations).toBeGreaterThanOrEqual(100_000);
  });

  it("upgrades an old, weaker hash at the next successful login", async () => {
    const user = await registerUser("upgrade");
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const weak = await derivePasswordHash(user.password, salt, 1000);
    await env.DIRECTORY.prepare(
      "update users set password_hash = ?, password_salt = ?, password_iterations = 1000 where id = ?",
    )
      .bind(weak, salt, user.userId)
      .run();

    const wrong = await call("POST", "/auth/login", {
      body: { username: user.username, password: "wrong password", deviceId: user.deviceId },
    });
    expect(wrong.status).toBe(401);
    expect((await row(user.username))!.iterations).toBe(1000);

    const res = await call("POST", "/auth/login", {
      body: { username: user.username, password: user.password, deviceId: user.deviceId },
    });
    expect(res.status).toBe(200);
    const upgraded = await row(user.username);
    expect(upgraded!.iterations).toBeGreaterThan(1000);
    expect(upgraded!.iterations).toBeLessThanOrEqual(PRODUCTION_PBKDF2_CAP);
    expect(new Uint8Array(upgraded!.hash)).not.toEqual(weak);
    const again = await call("POST", "/auth/login", {
      body: { username: user.username, password: user.password, deviceId: user.deviceId },
    });
    expect(again.status).toBe(200);
  });
});
