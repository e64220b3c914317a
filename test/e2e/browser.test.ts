// The reference web client in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
// .ci/run), driven headless by playwright-core against wrangler dev. Two browser contexts are two
// people on two devices: they register, one starts a conversation, they chat both ways live, and
// neither the requests the browsers sent nor what the server stores contains a plaintext.
// A screenshot of the conversation is saved under test-results/ (git-ignored).

import { randomBytes } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./chromium.js";
import { api, baseUrl, uniqueName } from "./helpers.js";

const SHOTS = "test-results";

interface Person {
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
}

let browser: Browser | undefined;
const people: Person[] = [];

async function person(prefix: string): Promise<Person> {
  if (!browser) throw new Error("no browser");
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  const p: Person = {
    name: uniqueName(prefix),
    password: `pw-${randomBytes(9).toString("hex")}`,
    context,
    page,
    sent: [],
    received: [],
    problems: [],
  };
  page.on("request", (req) => {
    const body = req.postData();
    if (body) p.sent.push(body);
  });
  page.on("websocket", (ws) => {
    ws.on("framesent", (f) => p.sent.push(String(f.payload)));
    ws.on("framereceived", (f) => p.received.push(String(f.payload)));
  });
  page.on("pageerror", (err) => p.problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") p.problems.push(`console: ${msg.text()}`);
  });
  people.push(p);
  await page.goto(`${baseUrl()}/`);
  await page.waitForSelector("html[data-ready='true']");
  return p;
}

async function register(p: Person): Promise<void> {
  await p.page.fill("#username", p.name);
  await p.page.fill("#password", p.password);
  await p.page.click("#register-button");
  await p.page.waitForSelector("#chat-view:not([hidden])");
  await expect.poll(() => p.page.textContent("#whoami")).toContain(p.name);
}

async function login(p: Person): Promise<void> {
  await p.page.fill("#username", p.name);
  await p.page.fill("#password", p.password);
  await p.page.click("#login-button");
  await p.page.waitForSelector("#chat-view:not([hidden])");
}

async function send(p: Person, text: string): Promise<void> {
  await p.page.fill("#message-input", text);
  await p.page.click("#send-button");
}

/** The texts of the open conversation's messages, in display order. */
const texts = (p: Person) => p.page.$$eval("#messages .message .text", (els) => els.map((e) => e.textContent ?? ""));

const waitForText = (p: Person, text: string) =>
  p.page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .message .text")].some((e) => e.textContent === t),
    text,
    { timeout: 15_000 },
  );

describe("reference web client in Chromium", () => {
  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it("two people chat end to end, live, both ways; the server never sees a plaintext", {
    timeout: 120_000,
  }, async () => {
    const alice = await person("web_alice");
    const bob = await person("web_bob");
    await register(alice);
    await register(bob);

    // The private key is in IndexedDB as a non-extractable X25519 CryptoKey.
    const stored = await alice.page.evaluate(async (name) => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open("parley");
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const record = await new Promise<{ privateKey: CryptoKey; publicKeyRaw: Uint8Array }>((resolve, reject) => {
        const req = db.transaction("identities").objectStore("identities").get(name.toLowerCase());
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      db.close();
      return {
        extractable: record.privateKey.extractable,
        algorithm: record.privateKey.algorithm.name,
        publicKeyBytes: record.publicKeyRaw.byteLength,
      };
    }, alice.name);
    expect(stored).toEqual({ extractable: false, algorithm: "X25519", publicKeyBytes: 32 });

    // Alice starts a conversation with Bob; it appears in Bob's list live (inbox socket).
    await alice.page.fill("#new-participants", bob.name);
    await alice.page.fill("#new-title", "Browser test");
    await alice.page.click("#create-conversation");
    await alice.page.waitForSelector("#live-state[data-state='open']");
    const item = bob.page.locator("#conversation-list .conversation-item", { hasText: "Browser test" });
    await item.waitFor({ timeout: 15_000 });
    await item.click();
    await bob.page.waitForSelector("#live-state[data-state='open']");

    const fromAlice = `Hello Bob, this is secret ${randomBytes(4).toString("hex")} 🔐`;
    const fromBob = `Hi Alice! Reply ${randomBytes(4).toString("hex")} — <b>not bold</b>`;
    const again = `One more from Alice ${randomBytes(4).toString("hex")}`;
    await send(alice, fromAlice);
    await waitForText(bob, fromAlice); // live, no reload
    await send(bob, fromBob);
    await waitForText(alice, fromBob);
    await send(alice, again);
    await waitForText(bob, again);
    await waitForText(alice, again);

    for (const p of [alice, bob]) {
      expect(await texts(p)).toEqual([fromAlice, fromBob, again]);
      expect(await p.page.locator("#messages .undecryptable").count()).toBe(0);
      // Text stays text: the markup in Bob's message was not rendered as HTML.
      expect(await p.page.locator("#messages .text b").count()).toBe(0);
    }
    await alice.page.screenshot({ path: `${SHOTS}/browser-alice.png` });
    await bob.page.screenshot({ path: `${SHOTS}/browser-bob.png` });

    // No plaintext left either browser: not in a request body, not in a WebSocket frame.
    for (const p of [alice, bob]) {
      for (const secret of [fromAlice, fromBob, again]) {
        expect(p.sent.some((s) => s.includes(secret))).toBe(false);
        expect(p.received.some((s) => s.includes(secret))).toBe(false);
      }
    }
    // What the server stores (its history, read through the API) is ciphertext only.
    const loginRes = await api<{ accessToken: string }>("POST", "/auth/login", {
      body: { username: bob.name, password: bob.password },
    });
    const token = loginRes.body.accessToken;
    const convs = await api<{ conversationId: number; title: string }[]>("GET", "/conversations", { token });
    const conv = convs.body.find((c) => c.title === "Browser test");
    expect(conv).toBeDefined();
    const history = await api<{ nonce: string; ciphertext: string; authTag: string }[]>(
      "GET",
      `/conversations/${conv!.conversationId}/messages`,
      { token },
    );
    expect(history.body).toHaveLength(3);
    const raw = JSON.stringify(history.body);
    for (const secret of [fromAlice, fromBob, again]) {
      expect(raw.includes(secret)).toBe(false);
      for (const m of history.body) {
        const stored = Buffer.concat([
          Buffer.from(m.nonce, "base64"),
          Buffer.from(m.ciphertext, "base64"),
          Buffer.from(m.authTag, "base64"),
        ]);
        expect(stored.includes(Buffer.from(secret))).toBe(false);
        expect(stored.toString("utf8").includes(secret)).toBe(false);
      }
    }

    // A reload forgets the session but not the key: after logging in again, the history decrypts.
    await alice.page.reload();
    await alice.page.waitForSelector("html[data-ready='true']");
    await login(alice);
    expect(await alice.page.locator("#key-warning").isHidden()).toBe(true);
    await alice.page.locator("#conversation-list .conversation-item", { hasText: "Browser test" }).click();
    await waitForText(alice, again);
    expect(await texts(alice)).toEqual([fromAlice, fromBob, again]);
    await bob.page.screenshot({ path: `${SHOTS}/browser-conversation.png` });

    expect(alice.problems).toEqual([]);
    expect(bob.problems).toEqual([]);
  });

  it("a browser without the account's key says so instead of showing garbage", { timeout: 60_000 }, async () => {
    const carol = await person("web_carol");
    await register(carol);
    // The same account on a fresh browser profile: no private key in its IndexedDB.
    const elsewhere = await person("web_other");
    elsewhere.name = carol.name;
    elsewhere.password = carol.password;
    await login(elsewhere);
    await elsewhere.page.waitForSelector("#key-warning:not([hidden])");
    expect(await elsewhere.page.textContent("#key-warning-text")).toMatch(/no private key/);
    expect(elsewhere.problems).toEqual([]);
  });
});
