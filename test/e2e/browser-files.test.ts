// Issue #14 in the reference web client, in Chromium against wrangler dev:
//   1. a 5 MiB file sent from alice's browser is downloaded, verified and decrypted in bob's: the
//      bytes bob's browser saves are the bytes alice picked, and no request body either browser sent
//      (the 5 MiB upload included) holds the plaintext; a PNG is shown inline from a blob: URL;
//      progress bars on the upload and the download
//   2. a push reaching a subscribed, disconnected browser profile. Chromium's own push service (FCM)
//      is unreachable here, so the page's PushManager.subscribe() is replaced (init script) by one
//      that returns a subscription pointing at a fake push service in this test (a Node HTTP server)
//      with keys the test made. Everything else is real: the "Notifications" toggle asks for
//      permission (granted through Playwright), the library PUTs the subscription, the profile's page
//      closes (no socket left), alice sends, the Worker's queue sends an RFC 8291 push to the fake,
//      and the test decrypts it with its own decryptor (test/push/rfc8291.ts, shared with the Workers
//      tests and sharing no code with src/push/) to exactly {conversationId, messageId}. That payload
//      is then delivered to the profile's real service worker (CDP ServiceWorker.deliverPushMessage),
//      which shows "New message"; the notification's click cannot be driven from CDP, so the URL the
//      click handler opens (/?conversation=<id>) is loaded and must open that conversation.
// Screenshots under test-results/files-*.png and push-*.png.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decryptPush, newUserAgent, toBase64Url } from "../push/rfc8291.ts";
import {
  type Device,
  openConversation,
  openDevice,
  register,
  send,
  shot,
  startConversation,
} from "./browser-helpers.js";
import { launchChromium } from "./chromium.js";
import { baseUrl, uniqueName } from "./helpers.js";

let browser: Browser;
const devices: Device[] = [];
/** Every request body each browser sent, as bytes (the helpers keep only text). */
const bodies = new Map<Device, Buffer[]>();
const password = () => `pw-${randomBytes(9).toString("hex")}`;

async function device(prefix: string): Promise<Device> {
  const d = await openDevice(browser, uniqueName(prefix), password());
  const list: Buffer[] = [];
  bodies.set(d, list);
  d.page.on("request", (req: Request) => {
    const b = req.postDataBuffer();
    if (b) list.push(b);
  });
  d.page.on("response", (res) => {
    if (res.status() >= 400) d.problems.push(`http ${res.status()} ${res.request().method()} ${res.url()}`);
  });
  devices.push(d);
  await register(d);
  return d;
}

async function accept(d: Device, title: string): Promise<void> {
  await openConversation(d, title);
  await d.page.click("#accept-request");
  await d.page.waitForSelector("#composer:not([hidden])");
}

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  for (const d of devices) expect(d.problems, `${d.name}'s page errors`).toEqual([]);
  await browser?.close();
});

describe("files in the browser", () => {
  let alice: Device;
  let bob: Device;

  it("sends a 5 MiB file from one browser and opens it in the other, byte for byte", { timeout: 120_000 }, async () => {
    alice = await device("files_alice");
    bob = await device("files_bob");
    await startConversation(alice, bob.name, "Files");
    await accept(bob, "Files");

    const secretFile = randomBytes(5 * 1024 * 1024);
    // Watch the upload's progress bar (values as the page shows them).
    await alice.page.evaluate(() => {
      const seen: number[] = [];
      (window as unknown as { uploadSeen: number[] }).uploadSeen = seen;
      const bar = document.getElementById("upload-progress") as HTMLProgressElement;
      const tick = () => {
        if (!document.getElementById("upload")?.hidden && bar.hasAttribute("value")) seen.push(bar.value);
        requestAnimationFrame(tick);
      };
      tick();
    });
    await alice.page.fill("#message-input", "the quarterly numbers");
    await alice.page.setInputFiles("#file-input", {
      name: "numbers.bin",
      mimeType: "application/octet-stream",
      buffer: secretFile,
    });
    await alice.page.waitForSelector("#upload:not([hidden])");
    await shot(alice, "files-1-uploading");
    await alice.page.waitForSelector("#messages .message.mine .file[data-attachment-id]", { timeout: 30_000 });
    await alice.page.waitForSelector("#upload[hidden]", { state: "attached" });
    const uploadSeen = await alice.page.evaluate(() => (window as unknown as { uploadSeen: number[] }).uploadSeen);
    expect(Math.max(0, ...uploadSeen)).toBeGreaterThan(0);

    const file = bob.page.locator("#messages .message .file", { hasText: "numbers.bin" });
    await file.waitFor({ timeout: 20_000 });
    expect(await bob.page.locator("#messages .message .text", { hasText: "the quarterly numbers" }).count()).toBe(1);
    await expect.poll(() => file.textContent()).toContain("5.0 MB");
    await shot(bob, "files-2-received");
    const saved = bob.page.waitForEvent("download", { timeout: 30_000 });
    await file.locator("button", { hasText: "Download" }).click();
    const download = await saved;
    expect(download.suggestedFilename()).toBe("numbers.bin");
    const got = readFileSync((await download.path())!);
    expect(got.equals(secretFile)).toBe(true);
    await file.locator("a.file-link").waitFor();
    await shot(bob, "files-3-downloaded");

    // What the server received as the upload's body (Chromium does not hand a 5 MiB Blob body to the
    // request event, so it is read back as stored, byte for byte): ciphertext, 16 bytes longer.
    const id = await alice.page.locator("#messages .message.mine .file").first().getAttribute("data-attachment-id");
    const stored = await fetch(`${baseUrl()}/attachments/${id}`, {
      headers: { Authorization: `Bearer ${alice.tokens.at(-1)}` },
    });
    expect(stored.status).toBe(200);
    const uploaded = Buffer.from(await stored.arrayBuffer());
    expect(uploaded.byteLength).toBe(secretFile.byteLength + 16);
    // No body either browser sent, and not the stored upload, holds any 64-byte stretch of the file.
    for (const body of [uploaded, ...(bodies.get(alice) ?? []), ...(bodies.get(bob) ?? [])]) {
      for (const at of [0, 1_000_000, 4_000_000, secretFile.byteLength - 64]) {
        expect(body.indexOf(secretFile.subarray(at, at + 64))).toBe(-1);
      }
    }
    for (const d of [alice, bob]) {
      for (const body of bodies.get(d) ?? []) {
        expect(body.toString("latin1")).not.toContain("quarterly numbers");
        expect(body.toString("latin1")).not.toContain("numbers.bin");
      }
    }
  });

  it("shows a sent image inline, decrypted into a blob: URL", async () => {
    const png = await alice.page.evaluate(async () => {
      const canvas = document.createElement("canvas");
      canvas.width = 240;
      canvas.height = 120;
      const g = canvas.getContext("2d")!;
      g.fillStyle = "#2a7ae2";
      g.fillRect(0, 0, 240, 120);
      g.fillStyle = "#fff";
      g.fillRect(40, 30, 160, 60);
      const blob = await new Promise<Blob>((r) => canvas.toBlob((b) => r(b!), "image/png"));
      return [...new Uint8Array(await blob.arrayBuffer())];
    });
    await alice.page.setInputFiles("#file-input", {
      name: "chart.png",
      mimeType: "image/png",
      buffer: Buffer.from(png),
    });
    const img = bob.page.locator("#messages .message .file img.file-image");
    await img.waitFor({ timeout: 20_000 });
    expect(await img.getAttribute("src")).toMatch(/^blob:/);
    await expect.poll(() => img.evaluate((i) => (i as HTMLImageElement).naturalWidth)).toBe(240);
    await alice.page.locator("#messages .message.mine img.file-image").waitFor();
    await shot(bob, "files-4-image-received");
    await shot(alice, "files-5-image-sent");
  });
});

describe("push to a disconnected browser profile", () => {
  let pushService: Server;
  const pushes: { path: string; headers: Record<string, string | string[] | undefined>; body: Buffer }[] = [];

  beforeAll(async () => {
    pushService = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        pushes.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(201).end();
      });
    });
    await new Promise<void>((r) => pushService.listen(0, "127.0.0.1", r));
  });
  afterAll(() => new Promise<void>((r) => pushService.close(() => r())));

  it("subscribes on opt-in, gets a push for a message while closed, and opens its conversation", {
    timeout: 120_000,
  }, async () => {
    const ua = await newUserAgent();
    const endpoint = `http://127.0.0.1:${(pushService.address() as AddressInfo).port}/push/${randomBytes(8).toString("hex")}`;
    const keys = { p256dh: toBase64Url(ua.publicKey), auth: toBase64Url(ua.auth) };

    const alice = await device("push_alice");
    const carol = await device("push_carol");
    // The fake push service in place of Chromium's (see the header); set before the page loads.
    await carol.context.addInitScript(
      ({ endpoint, keys }) => {
        // Remembered across this profile's pages, as a browser remembers its subscription.
        const remember = (on: boolean) => localStorage.setItem("fake-push-subscribed", on ? "1" : "");
        const subscribed = () => localStorage.getItem("fake-push-subscribed") === "1";
        const sub = {
          endpoint,
          options: { applicationServerKey: null, userVisibleOnly: true },
          toJSON: () => ({ endpoint, expirationTime: null, keys }),
          unsubscribe: async () => {
            remember(false);
            return true;
          },
        };
        PushManager.prototype.subscribe = async () => {
          remember(true);
          return sub as unknown as PushSubscription;
        };
        PushManager.prototype.getSubscription = async () => (subscribed() ? sub : null) as unknown as PushSubscription;
      },
      { endpoint, keys },
    );
    await carol.context.grantPermissions(["notifications"], { origin: baseUrl() });
    await carol.page.reload();
    await carol.page.waitForSelector("#chat-view:not([hidden])", { timeout: 20_000 });

    await startConversation(alice, carol.name, "Pings");
    await accept(carol, "Pings");
    const button = carol.page.locator("#notifications-button");
    await button.waitFor();
    expect(await button.getAttribute("data-state")).toBe("off");
    await button.click();
    await expect
      .poll(
        async () =>
          `${await button.getAttribute("data-state")} ${await carol.page.textContent("#status")} ${carol.problems}`,
      )
      .toMatch(/^on /);
    expect(await carol.page.evaluate(() => Notification.permission)).toBe("granted");
    expect(carol.sent.some((b) => b.includes(endpoint))).toBe(true); // the PUT /devices/{id}/push
    await shot(carol, "push-1-notifications-on");

    // Carol's browser disconnects: its only page closes (the profile and its service worker stay).
    await carol.page.close();
    await new Promise((r) => setTimeout(r, 500));
    const before = pushes.length;
    await send(alice, "are you there?");
    const messageId = Number(
      await alice.page.locator("#messages .message.mine").last().getAttribute("data-message-id"),
    );
    const conversationId = Number(
      await alice.page.locator("#conversation-list [aria-current='true']").getAttribute("data-conversation-id"),
    );
    await expect.poll(() => pushes.length, { timeout: 20_000 }).toBeGreaterThan(before);
    const push = pushes.at(-1)!;
    expect(push.path).toBe(new URL(endpoint).pathname);
    expect(push.headers["content-encoding"]).toBe("aes128gcm");
    expect(String(push.headers.authorization)).toMatch(/^vapid t=/);
    const { plaintext } = await decryptPush(new Uint8Array(push.body), ua);
    expect(JSON.parse(plaintext)).toEqual({ conversationId, messageId });
    expect(plaintext).toBe(JSON.stringify({ conversationId, messageId }));

    // The decrypted payload, delivered to carol's real service worker: it shows "New message".
    const page = await carol.context.newPage();
    page.on("pageerror", (err) => carol.problems.push(`pageerror: ${err.message}`));
    await page.goto(`${baseUrl()}/`);
    await page.waitForSelector("html[data-ready='true']");
    await page.evaluate(() => navigator.serviceWorker.ready);
    const cdp = await carol.context.newCDPSession(page);
    const registrationId = new Promise<string>((resolve) =>
      cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => {
        const r = e.registrations.find((x) => x.scopeURL === `${baseUrl()}/` && !x.isDeleted);
        if (r) resolve(r.registrationId);
      }),
    );
    await cdp.send("ServiceWorker.enable");
    const registration = await registrationId;
    const shown = async () =>
      page.evaluate(async () =>
        (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({
          title: n.title,
          body: n.body,
          data: n.data,
        })),
      );
    // CDP can hand the push over before the worker it names is running, and then it is lost: hand
    // it over again until it shows (the same tag replaces, so a repeat shows one notification).
    const expected = [{ title: "New message", body: "Open Parley to read it.", data: { conversationId, messageId } }];
    for (let attempt = 0; attempt < 10; attempt++) {
      await cdp.send("ServiceWorker.deliverPushMessage", {
        origin: baseUrl(),
        registrationId: registration,
        data: plaintext,
      });
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && (await shown()).length === 0) await new Promise((r) => setTimeout(r, 100));
      if ((await shown()).length > 0) break;
    }
    expect(await shown()).toEqual(expected);

    // What the click handler opens when no Parley window is open: the conversation itself.
    await page.goto(`${baseUrl()}/?conversation=${conversationId}`);
    await expect.poll(() => page.textContent("#conversation-title"), { timeout: 20_000 }).toBe("Pings");
    await page.waitForFunction(
      () => [...document.querySelectorAll("#messages .message .text")].some((e) => e.textContent === "are you there?"),
      undefined,
      { timeout: 15_000 },
    );
    expect(new URL(page.url()).search).toBe("");
    await expect.poll(() => page.getAttribute("#notifications-button", "data-state")).toBe("on");
    await page.waitForSelector("#live-state[data-state='open']");
    await page.screenshot({ path: "test-results/push-2-opened-from-notification.png" });
  });
});
