import { describe, expect, it, vi } from "vitest";
import { call } from "./helpers/api";

async function callWith(vars: Partial<Record<keyof Env, string | undefined>>, path: string) {
  const errors = vi.spyOn(console, "error").mockImplementation(() => {});
  try {
    const res = await call("GET", path, { env: vars });
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
      const { res, logged } = await callWith({ JWT_SECRET: secret }, path);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: "internal", message: "server is not configured" } });
      expect(
        logged.some((line) => line.includes("JWT_SECRET") && line.includes("wrangler secret put JWT_SECRET")),
      ).toBe(true);
      if (secret) expect(logged.join("\n")).not.toContain(secret);
    }
  });

  it("the development secret of .dev.vars.example fails every request outside local development", async () => {
    const developmentSecret = "dev-only-secret-change-me-0123456789abcdef";
    const { res, logged } = await callWith({ JWT_SECRET: developmentSecret, ENVIRONMENT: "production" }, "/health");
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: "internal", message: "server is not configured" } });
    expect(logged.some((line) => line.includes("JWT_SECRET") && line.includes("ENVIRONMENT=development"))).toBe(true);
    expect(logged.join("\n")).not.toContain(developmentSecret);
    const local = await callWith({ JWT_SECRET: developmentSecret, ENVIRONMENT: "development" }, "/health");
    expect(local.res.status).toBe(200);
  });

  it("a 32-byte secret is accepted", async () => {
    const { res } = await callWith({ JWT_SECRET: "y".repeat(32) }, "/health");
    expect(res.status).toBe(200);
  });
});

describe("the other settings", () => {
  it.each([
    ["TOKEN_TTL_SECONDS", "soon"],
    ["TOKEN_TTL_SECONDS", "0"],
    ["MAX_SOCKETS_PER_OBJECT", "-5"],
    ["RATE_LIMITS", "maybe"],
    ["JWT_ISSUER", ""],
    ["JWT_AUDIENCE", undefined],
    ["ENVIRONMENT", ""],
    ["ENVIRONMENT", undefined],
  ])(
    "%s = %j fails every request with one clear 500 and a log line naming it, never a default",
    async (name, value) => {
      for (const path of ["/health", "/conversations"]) {
        const { res, logged } = await callWith({ [name]: value }, path);
        expect(res.status).toBe(500);
        expect(await res.json()).toEqual({ error: { code: "internal", message: "server is not configured" } });
        expect(logged.filter((line) => line.startsWith(`configuration: ${name} `))).toHaveLength(1);
      }
    },
  );

  it("the values wrangler.toml ships are accepted", async () => {
    const { res, logged } = await callWith({}, "/health");
    expect(res.status).toBe(200);
    expect(logged).toEqual([]);
  });
});
