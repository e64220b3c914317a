import { describe, expect, it } from "vitest";
import { call, errorOf } from "./helpers/api";

describe("GET /health", () => {
  it("answers ok", async () => {
    const res = await call("GET", "/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("answers unknown routes with 404 in the error shape", async () => {
    const res = await call("GET", "/nope");
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("not_found");
  });

  it("answers a wrong method with 405 and Allow", async () => {
    const res = await call("DELETE", "/health");
    expect(res.status).toBe(405);
    expect(res.headers.get("Allow")).toContain("GET");
    expect((await errorOf(res)).code).toBe("method_not_allowed");
  });
});
