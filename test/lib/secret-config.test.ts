import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../src/app";

const DEVELOPMENT_SECRET = "dev-only-secret-change-me-0123456789abcdef"; // .dev.vars.example's

async function callWithSecret(secret: string | undefined, path: string, vars: Record<string, string> = {}) {
  const errors = vi.spyOn(console, "error").mockImplementation(() => {});
  try {
    const res = await app.fetch(
      new Request(`http://parley.test${path}`),
      { ...env, ...vars, JWT_SECRET: secret as string },
      createExecutionContext(),
    );
    return { res, logged: errors.mock.calls.map((args) => args.join(" ")) };
  } finally {
    errors.mockRestore();
  }
}

describe("JWT_SECRET configuration", () => {
  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["31 bytes", "x".repeat(31)],
  ])("a %s secret fails every request with a clear 500 and says what to set in the log", async (_label, secret) => {
    for (const path of ["/health", "/users/me", "/conversations"]) {
      const { res, logged } = await callWithSecret(secret, path);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: "internal", message: "server is not configured" } });
      expect(
        logged.some((line) => line.includes("JWT_SECRET") && line.includes("wrangler secret put JWT_SECRET")),
      ).toBe(true);
      if (secret) expect(logged.join("\n")).not.toContain(secret);
    }
  });

  it("the development secret of .dev.vars.example fails every request outside local development", async () => {
    for (const vars of [{}, { ENVIRONMENT: "production" }, { ENVIRONMENT: "" }] as Record<string, string>[]) {
      const { res, logged } = await callWithSecret(DEVELOPMENT_SECRET, "/health", vars);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: "internal", message: "server is not configured" } });
      expect(logged.some((line) => line.includes("JWT_SECRET") && line.includes("ENVIRONMENT"))).toBe(true);
      expect(logged.join("\n")).not.toContain(DEVELOPMENT_SECRET);
    }
  });

  it("the development secret works where ENVIRONMENT is development (.dev.vars)", async () => {
    const { res } = await callWithSecret(DEVELOPMENT_SECRET, "/health", { ENVIRONMENT: "development" });
    expect(res.status).toBe(200);
  });

  it("a 32-byte secret is accepted", async () => {
    const { res } = await callWithSecret("y".repeat(32), "/health");
    expect(res.status).toBe(200);
  });
});
