// GET /docs in a real browser: the interactive reference renders /openapi.json, and every request it
// makes (script, styles, fonts, the document) stays on the Worker's own origin: no CDN.
import { mkdirSync } from "node:fs";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./chromium.js";
import { baseUrl } from "./helpers.js";

let browser: Browser | undefined;

describe("GET /docs", () => {
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("renders the API reference from /openapi.json with nothing loaded from another origin", async () => {
    const page = await browser!.newPage();
    const origins = new Set<string>();
    const failed: string[] = [];
    page.on("request", (req) => origins.add(new URL(req.url()).origin));
    page.on("requestfailed", (req) => failed.push(req.url()));
    const res = await page.goto(`${baseUrl()}/docs`);
    expect(res?.status()).toBe(200);
    await page.getByText("Create an account").first().waitFor({ timeout: 20_000 });
    await page.getByText("End-to-end-encrypted messaging backend", { exact: false }).first().waitFor();
    expect([...origins].filter((o) => o !== "null" && !o.startsWith("data:"))).toEqual([new URL(baseUrl()).origin]);
    expect(failed).toEqual([]);
    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: "test-results/docs.png" });
    await page.close();
  });
});
