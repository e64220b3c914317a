import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../src/app";

async function callWithSecret(secret: string | undefined, path: string) {
  const errors = vi.spyOn(console, "error").mockImplementation(() => {});
  try {
    const res = await app.fetch(
      new Request(`http://parley.test${path}`),
      { ...env, JWT_SECRET: secret as string },
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

  it("a 32-byte secret is accepted", async () => {
    const { res } = await callWithSecret("y".repeat(32), "/health");
    expect(res.status).toBe(200);
  });
});
