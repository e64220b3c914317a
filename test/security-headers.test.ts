import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../src/app";
import { call, registerUser } from "./helpers/api";

const expectNoStoreNoSniff = (res: Response) => {
  expect(res.headers.get("Cache-Control")).toBe("no-store");
  expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
};

describe("API response headers", () => {
  it("every answer, errors included, says no-store and nosniff", async () => {
    const alice = await registerUser("hdr");
    const answers = [
      await call("GET", "/health"),
      await call("GET", "/users/me", { token: alice.token }),
      await call("GET", "/users/me"), // 401
      await call("GET", "/conversations/abc", { token: alice.token }), // 422
      await call("GET", "/no/such/route"), // 404
      await call("PATCH", "/health"), // 405
      await call("POST", "/auth/login", { body: "{not json" }), // 400
      await call("GET", "/ws"), // 426
      await call("GET", "/openapi.json"),
    ];
    for (const res of answers) expectNoStoreNoSniff(res);
  });

  it("a 500 for a missing secret has them too", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const res = await app.fetch(
        new Request("http://parley.test/health"),
        { ...env, JWT_SECRET: "" },
        createExecutionContext(),
      );
      expect(res.status).toBe(500);
      expectNoStoreNoSniff(res);
    } finally {
      errors.mockRestore();
    }
  });
});
