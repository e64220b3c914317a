// Driving the reference web client in Chromium: one browser context per device (a "profile"), what
// each one sent and received on the wire (for the plaintext checks), and the few UI steps the
// browser tests repeat. The page's own ids and data attributes are the interface (public/index.html).

import { mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { expect } from "vitest";
import { baseUrl } from "./helpers.js";

export const SHOTS = "test-results";
mkdirSync(SHOTS, { recursive: true });

/** One browser profile: a device of `name`. */
export interface Device {
  name: string;
  password: string;
  context: BrowserContext;
  page: Page;
  /** Everything this browser sent to the server: request bodies and WebSocket frames. */
  sent: string[];
  /** Everything it received on WebSockets. */
  received: string[];
  /** Uncaught page errors and console errors. */
  problems: string[];
  /** Access tokens this browser sent (Authorization headers), newest last. */
  tokens: string[];
}

export async function openDevice(browser: Browser, name: string, password: string): Promise<Device> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  const d: Device = { name, password, context, page, sent: [], received: [], problems: [], tokens: [] };
  page.on("request", (req) => {
    const body = req.postData();
    if (body) d.sent.push(body);
    const auth = req.headers().authorization;
    if (auth?.startsWith("Bearer ")) d.tokens.push(auth.slice(7));
  });
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => d.sent.push(String(f.payload)));
    ws.on("framereceived", (f) => d.received.push(String(f.payload)));
  });
  page.on("pageerror", (err) => d.problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") d.problems.push(`console: ${msg.text()}`);
  });
  await page.goto(`${baseUrl()}/`);
  await page.waitForSelector("html[data-ready='true']");
  return d;
}

export async function shot(d: Device, name: string): Promise<void> {
  await d.page.screenshot({ path: `${SHOTS}/${name}.png` });
}

export const screen = (d: Device) => d.page.getAttribute("body", "data-screen");

async function fillAuth(d: Device): Promise<void> {
  await d.page.waitForSelector("#auth-view:not([hidden])");
  await d.page.fill("#username", d.name);
  await d.page.fill("#password", d.password);
}

export async function register(d: Device): Promise<void> {
  await fillAuth(d);
  await d.page.click("#register-button");
  await d.page.waitForSelector("#chat-view:not([hidden])", { timeout: 20_000 });
  await expect.poll(() => d.page.textContent("#whoami")).toContain(d.name);
}

/** Logs in; resolves on the screen it lands on ("chat" for a known device, "pending" for a new one). */
export async function login(d: Device): Promise<"chat" | "pending"> {
  await fillAuth(d);
  await d.page.click("#login-button");
  await d.page.waitForSelector("#chat-view:not([hidden]), #pending-view:not([hidden])", { timeout: 20_000 });
  return (await d.page.isVisible("#pending-view")) ? "pending" : "chat";
}

export async function startConversation(d: Device, withUser: string, title: string): Promise<void> {
  await d.page.fill("#new-participants", withUser);
  await d.page.fill("#new-title", title);
  await d.page.click("#create-conversation");
  await d.page.waitForSelector("#live-state[data-state='open']");
  await expect.poll(() => d.page.textContent("#conversation-title")).toBe(title);
}

/** Opens a conversation from the list or from the message requests. */
export async function openConversation(d: Device, title: string): Promise<void> {
  const item = d.page.locator("#chat-view .conversation-item", { hasText: title });
  await item.waitFor({ timeout: 15_000 });
  await item.click();
  await expect.poll(() => d.page.textContent("#conversation-title")).toBe(title);
  await d.page.waitForSelector("#live-state[data-state='open']", { timeout: 15_000 });
}

export async function send(d: Device, text: string): Promise<void> {
  await d.page.fill("#message-input", text);
  await d.page.click("#send-button");
  await waitForText(d, text);
}

/** The texts of the open conversation's messages, in display order. */
export const texts = (d: Device) =>
  d.page.$$eval("#messages .message .text", (els) => els.map((e) => e.textContent ?? ""));

export const waitForText = (d: Device, text: string) =>
  d.page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .message .text")].some((e) => e.textContent === t),
    text,
    { timeout: 15_000 },
  );

/** No request body or frame this browser sent or received contains any of `secrets`. */
export function expectNoPlaintext(devices: Device[], secrets: string[]): void {
  for (const d of devices) {
    for (const secret of secrets) {
      expect(
        d.sent.some((s) => s.includes(secret)),
        `${d.name} sent "${secret}"`,
      ).toBe(false);
      expect(
        d.received.some((s) => s.includes(secret)),
        `${d.name} received "${secret}"`,
      ).toBe(false);
    }
  }
}

/** Opens the People dialog of the open conversation. */
export async function openPeople(d: Device): Promise<void> {
  await d.page.click("#details-button");
  await d.page.waitForSelector("#details-dialog[open] .participant");
}

/** Adds `username` from the People dialog (which must be open); resolves once the form is idle again. */
export async function addFromPeople(d: Device, username: string): Promise<void> {
  await d.page.fill("#add-participant-input", username);
  await d.page.click("#add-participant-button");
  await d.page.waitForSelector("#add-participant-form:not([aria-busy])");
}

/** The usernames the open conversation's People dialog lists. */
export const peopleListed = (d: Device) =>
  d.page.$$eval("#details-participants .participant", (els) => els.map((e) => e.getAttribute("data-username")));
