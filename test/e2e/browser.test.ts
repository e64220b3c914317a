// The reference web client in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
// .ci/run), driven headless by playwright-core against wrangler dev. Each browser context is one
// device (a browser profile). The tests run in order and share their people:
//   1. alice and bob register; alice's conversation reaches bob as a message request (readable, no
//      composer) until he accepts; then they chat live both ways; nothing on the wire holds a plaintext
//   2. alice adds dave from the People dialog (a new key epoch), then logs in on a second profile: it
//      shows a code and waits; her first profile gets a prompt with the same code and approves it; the
//      second then reads every conversation, including the messages sent before it was approved under
//      an earlier epoch, and both of her devices chat live
//   3. (membership) carol declines alice's request and blocks her: alice cannot add her back and is
//      told why; carol's Blocked people list shows alice; alice (admin) removes bob from "Team" and
//      bob's screen says so; alice leaves bob's conversation and bob sees her go
//   4. a reload keeps the session; "Log out" ends it: the old access token gets 401 at once
//   5. removing a device from the Devices dialog signs that browser out
//   6. bob resets his identity: alice sees a safety warning, trusts the new key, and bob's new device
//      reads what she sends next
//   7. bob removes carol: nothing posted afterwards can be decrypted with what carol can fetch
// Screenshots of every screen are saved under test-results/ (git-ignored).

import { randomBytes } from "node:crypto";
import { ParleyClient } from "parley/client";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addFromPeople,
  type Device,
  expectNoPlaintext,
  login,
  openConversation,
  openDevice,
  openPeople,
  peopleListed,
  register,
  screen,
  send,
  shot,
  startConversation,
  texts,
  waitForText,
} from "./browser-helpers.js";
import { launchChromium } from "./chromium.js";
import { api, baseUrl, uniqueName } from "./helpers.js";

let browser: Browser;
const secret = (label: string) => `${label} ${randomBytes(4).toString("hex")} 🔐`;
const password = () => `pw-${randomBytes(9).toString("hex")}`;
const names = { alice: uniqueName("web_alice"), bob: uniqueName("web_bob"), carol: uniqueName("web_carol") };
const pw = { alice: password(), bob: password(), carol: password() };
/** Every plaintext typed in a browser, for the final wire check. */
const secrets: string[] = [];
const devices: Device[] = [];
let alice: Device;
let bob: Device;
let alice2: Device;
/** "Browser test" so far, in order (alice's second browser must read all of it). */
let a1: string;
let b1: string;
let a2: string;

async function device(name: keyof typeof names): Promise<Device> {
  const d = await openDevice(browser, names[name], pw[name]);
  devices.push(d);
  return d;
}

async function say(d: Device, label: string): Promise<string> {
  const text = secret(label);
  secrets.push(text);
  await send(d, text);
  return text;
}

describe("reference web client in Chromium", () => {
  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it("two people register and chat live both ways; no plaintext on the wire", { timeout: 120_000 }, async () => {
    alice = await device("alice");
    bob = await device("bob");
    expect(await screen(alice)).toBe("auth");
    await shot(alice, "01-sign-in");
    await register(alice);
    await register(bob);
    await shot(alice, "02-registered");

    // This browser's device keys are in IndexedDB, non-extractable.
    const stored = await alice.page.evaluate(async (name) => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open("parley-client");
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const record = await new Promise<{ keys: { identity: { privateKey: CryptoKey } } }>((resolve, reject) => {
        const req = db.transaction("kv").objectStore("kv").get(`${name.toLowerCase()}/device`);
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      db.close();
      const key = record.keys.identity.privateKey;
      return { extractable: key.extractable, algorithm: key.algorithm.name };
    }, alice.name);
    expect(stored).toEqual({ extractable: false, algorithm: "X25519" });

    await startConversation(alice, bob.name, "Browser test");
    // Bob never accepted anything from alice: it reaches him live as a message request.
    const request = bob.page.locator("#request-list .conversation-item.request", { hasText: "Browser test" });
    await request.waitFor({ timeout: 15_000 });
    expect(await bob.page.locator("#conversation-list .conversation-item").count()).toBe(0);
    await openConversation(bob, "Browser test");
    a1 = await say(alice, "Hello Bob, this is secret");
    await waitForText(bob, a1); // a request can be read ...
    expect(await bob.page.isVisible("#request-banner")).toBe(true);
    expect(await bob.page.textContent("#request-text")).toContain(`${alice.name} wants to chat with you`);
    expect(await bob.page.isVisible("#composer")).toBe(false); // ... but not answered
    await shot(bob, "03a-message-request");
    await bob.page.click("#accept-request");
    await bob.page.waitForSelector("#composer:not([hidden])");
    expect(await bob.page.isVisible("#request-banner")).toBe(false);
    await bob.page.locator("#conversation-list .conversation-item", { hasText: "Browser test" }).waitFor();
    expect(await bob.page.locator("#request-list .conversation-item").count()).toBe(0);
    await expect.poll(() => bob.page.textContent("#status")).toMatch(/accepted/);
    b1 = await say(bob, "Hi Alice! <b>not bold</b>");
    await waitForText(alice, b1);
    for (const d of [alice, bob]) {
      expect(await texts(d)).toEqual([a1, b1]);
      expect(await d.page.locator("#messages .undecryptable").count()).toBe(0);
      expect(await d.page.locator("#messages .text b").count()).toBe(0); // text stays text
    }
    // Bob's reply used the epoch alice committed right after creating it: nobody rotated.
    await shot(alice, "03-chat-alice");
    await shot(bob, "03-chat-bob");
    expectNoPlaintext([alice, bob], secrets);

    // What the server stores (read through the API with bob's browser's token) is ciphertext only.
    const id = await alice.page.getAttribute("#conversation-list [aria-current='true']", "data-conversation-id");
    const history = await api<{ nonce: string; ciphertext: string; authTag: string }[]>(
      "GET",
      `/conversations/${id}/messages`,
      { token: bob.tokens.at(-1)! },
    );
    expect(history.body).toHaveLength(2);
    for (const m of history.body) {
      const stored = Buffer.concat([m.nonce, m.ciphertext, m.authTag].map((x) => Buffer.from(x, "base64")));
      for (const text of [a1, b1]) {
        expect(JSON.stringify(m).includes(text)).toBe(false);
        expect(stored.includes(Buffer.from(text))).toBe(false);
      }
    }
  });

  it("a second browser of alice is approved with the comparison code and reads everything", {
    timeout: 150_000,
  }, async () => {
    // Before the second device exists: a conversation bob starts, with a message (alice started
    // contact with bob, so it is no request for her) ...
    await startConversation(bob, alice.name, "Before approval");
    const early = await say(bob, "Sent before the new device");
    await alice.page.locator("#conversation-list .conversation-item", { hasText: "Before approval" }).waitFor();
    // ... and in "Browser test" alice adds dave (another app's user) from the People dialog: a new
    // key epoch, so a1 and b1 are now under an earlier epoch than the current one.
    const dave = new ParleyClient({ baseUrl: baseUrl() });
    const daveName = uniqueName("web_dave");
    await dave.register(daveName, password());
    await openConversation(alice, "Browser test");
    await openConversation(bob, "Browser test");
    await openPeople(alice);
    await addFromPeople(alice, daveName);
    await expect.poll(() => peopleListed(alice)).toContain(daveName);
    await shot(alice, "04a-people-added-dave");
    await alice.page.click("#details-close");
    await expect.poll(() => alice.page.textContent("#conversation-members")).toContain(daveName);
    await expect.poll(() => bob.page.textContent("#conversation-members")).toContain(daveName); // live
    a2 = await say(alice, "Dave is here now");
    await waitForText(bob, a2);
    const browserTestId = Number(
      await alice.page.getAttribute("#conversation-list [aria-current='true']", "data-conversation-id"),
    );

    alice2 = await device("alice");
    expect(await login(alice2)).toBe("pending");
    const code = (await alice2.page.textContent("#pending-code"))?.trim() ?? "";
    expect(code).toMatch(/^\d{4} \d{4} \d{4}$/);
    await shot(alice2, "04-pending-device");

    // Alice's first browser is prompted live (devicePending on its inbox), showing the same code.
    const prompt = alice.page.locator("#approval-prompts .approval-prompt");
    await prompt.waitFor({ timeout: 15_000 });
    expect(await prompt.locator(".code").textContent()).toBe(code);
    await shot(alice, "05-approval-prompt");
    await prompt.locator(".approve-device").click();
    await prompt.waitFor({ state: "detached", timeout: 20_000 });

    // The new browser is linked and reads both conversations, the earlier messages of each
    // conversation's current key epoch included.
    await alice2.page.waitForSelector("#chat-view:not([hidden])", { timeout: 20_000 });
    await openConversation(alice2, "Before approval");
    await waitForText(alice2, early);
    expect(await alice2.page.locator("#messages .undecryptable").count()).toBe(0);
    await openConversation(alice2, "Browser test");
    await expect.poll(() => texts(alice2)).toHaveLength(3);
    // Every message sent before the approval reads, those of the earlier epoch included: the current
    // epoch's key came in the approval body, the earlier ones in the provisioning envelope.
    expect(await texts(alice2)).toEqual([a1, b1, a2]);
    expect(await alice2.page.locator("#messages .undecryptable").count()).toBe(0);
    const stored = await api<{ keyEpoch: number }[]>("GET", `/conversations/${browserTestId}/messages?limit=10`, {
      token: alice2.tokens.at(-1)!,
    });
    expect(stored.body.map((m) => m.keyEpoch).reverse()).toEqual([2, 2, 3]);

    // All three chat live in the first conversation; both of alice's browsers see every message.
    await openConversation(bob, "Browser test");
    const fromNew = await say(alice2, "From alice's second browser");
    await waitForText(bob, fromNew);
    await waitForText(alice, fromNew);
    const fromBob = await say(bob, "Bob to both of alice's browsers");
    await waitForText(alice, fromBob);
    await waitForText(alice2, fromBob);
    expect(await texts(alice2)).toEqual(await texts(alice));
    await shot(alice2, "06-chat-second-device");
    await shot(alice, "06-chat-first-device");

    // The Devices dialog lists both.
    await alice.page.click("#devices-button");
    await alice.page.waitForSelector("#other-devices .device .remove-device");
    expect(await alice.page.locator("#this-device .device").count()).toBe(1);
    expect(await alice.page.locator("#other-devices .device").count()).toBe(1);
    await shot(alice, "07-devices-panel");
    await alice.page.click("#devices-close");
    expectNoPlaintext(devices, secrets);
  });

  it("declining with block, an admin's removal and leaving show on every screen involved", {
    timeout: 150_000,
  }, async () => {
    const carol = await device("carol");
    await register(carol);

    // Carol gets alice's request, declines it and blocks alice.
    await startConversation(alice, carol.name, "For carol");
    const hello = await say(alice, "Hello carol");
    await openConversation(carol, "For carol");
    await waitForText(carol, hello);
    expect(await carol.page.isVisible("#request-banner")).toBe(true);
    await shot(carol, "14-request-carol");
    await carol.page.click("#decline-block-request");
    await expect.poll(() => carol.page.textContent("#status")).toContain(`blocked ${alice.name}`);
    expect(await carol.page.isVisible("#conversation")).toBe(false);
    expect(await carol.page.locator(".conversation-item", { hasText: "For carol" }).count()).toBe(0);
    await carol.page.click("#settings-button");
    await carol.page.locator("#blocked-list .blocked-user", { hasText: alice.name }).waitFor();
    await shot(carol, "15-blocked-people");
    await carol.page.click("#settings-close");

    // Alice's open conversation follows (carol is gone); adding her back is refused, in words.
    await expect.poll(() => alice.page.textContent("#conversation-members")).not.toContain(carol.name);
    await openPeople(alice);
    expect(await peopleListed(alice)).toEqual([alice.name]);
    await addFromPeople(alice, carol.name);
    await expect
      .poll(() => alice.page.textContent("#details-error"))
      .toBe(`You can't add ${carol.name}: they don't accept conversations from you.`);
    await shot(alice, "16-cannot-add-blocker");
    await alice.page.click("#details-close");
    expect(alice.problems.splice(0)).toEqual([expect.stringMatching(/status of 403/)]);

    // Alice (admin) removes bob from "Team": bob accepted alice before, so it is no request for him.
    await startConversation(alice, bob.name, "Team");
    await openConversation(bob, "Team");
    expect(await bob.page.isVisible("#request-banner")).toBe(false);
    expect(await bob.page.isVisible("#composer")).toBe(true);
    const teamMsg = await say(bob, "Glad to be on the team");
    await waitForText(alice, teamMsg);
    await openPeople(bob);
    expect(await bob.page.locator("#details-participants .remove-participant").count()).toBe(0); // a member
    await bob.page.click("#details-close");
    await openPeople(alice);
    expect(await alice.page.textContent("#details-role")).toMatch(/admin/);
    await shot(alice, "17-people-admin");
    await alice.page.click(`#details-participants [data-username='${bob.name}'] .remove-participant`);
    await expect.poll(() => peopleListed(alice)).toEqual([alice.name]);
    await alice.page.click("#details-close");
    await bob.page.waitForSelector("#left-notice:not([hidden])", { timeout: 15_000 });
    expect(await bob.page.textContent("#left-notice")).toContain(`${alice.name} removed you from “Team”`);
    expect(await bob.page.isVisible("#composer")).toBe(false);
    expect(await bob.page.locator(".conversation-item", { hasText: "Team" }).count()).toBe(0);
    await shot(bob, "18-removed-by-admin");

    // Alice leaves bob's "Before approval"; bob's open conversation shows her gone.
    await openConversation(bob, "Before approval");
    await openConversation(alice, "Before approval");
    await openPeople(alice);
    expect(await alice.page.isVisible("#leave-conversation")).toBe(true);
    await alice.page.click("#leave-conversation");
    await expect.poll(() => alice.page.textContent("#left-notice")).toContain("You left “Before approval”");
    await shot(alice, "19-left-conversation");
    await expect.poll(() => bob.page.textContent("#conversation-members")).not.toContain(alice.name);
    await expect.poll(() => bob.page.textContent("#status")).toContain(`${alice.name} left`);
    await shot(bob, "20-other-left");
    const afterLeave = await say(bob, "Alice left, I am still here"); // rotates first, without her
    await waitForText(bob, afterLeave);
    expect(await alice.page.locator(".conversation-item", { hasText: "Before approval" }).count()).toBe(0);
    await expect.poll(() => alice2.page.locator(".conversation-item", { hasText: "Before approval" }).count()).toBe(0);
    await openConversation(alice, "Browser test"); // where the next tests expect alice
    expectNoPlaintext(devices, secrets);
  });

  it("a reload keeps the session; Log out ends it on the server", { timeout: 90_000 }, async () => {
    const before = await texts(alice2); // "Browser test" is open
    await alice2.page.reload();
    await alice2.page.waitForSelector("#chat-view:not([hidden])", { timeout: 20_000 });
    expect(await alice2.page.textContent("#whoami")).toContain(alice2.name);
    await openConversation(alice2, "Browser test");
    await expect.poll(() => texts(alice2)).toEqual(before);
    expect(before).toHaveLength(5);

    const token = alice2.tokens.at(-1)!;
    expect((await api("GET", "/users/me", { token })).status).toBe(200);
    await alice2.page.click("#logout");
    await alice2.page.waitForSelector("#auth-view:not([hidden])");
    expect(await alice2.page.textContent("#auth-notice")).toMatch(/logged out/i);
    await shot(alice2, "08-logged-out");
    expect((await api("GET", "/users/me", { token })).status).toBe(401);
    await alice2.page.reload();
    await alice2.page.waitForSelector("html[data-ready='true']");
    expect(await screen(alice2)).toBe("auth"); // nothing left to resume
  });

  it("logging in again needs no approval; removing the device signs it out", { timeout: 90_000 }, async () => {
    expect(await login(alice2)).toBe("chat"); // the browser is still a device of alice's
    await alice.page.click("#devices-button");
    const remove = alice.page.locator("#other-devices .remove-device");
    await remove.waitFor();
    await remove.click();
    await alice.page.fill("#confirm-password", "not the password");
    await alice.page.click("#password-confirm");
    await expect.poll(() => alice.page.textContent("#password-error")).toMatch(/password is not right/);
    // The browser itself logs the refused request; that one is expected.
    expect(alice.problems.splice(0)).toEqual([expect.stringMatching(/status of 403/)]);
    await alice.page.fill("#confirm-password", alice.password);
    await shot(alice, "09-remove-device");
    await alice.page.click("#password-confirm");
    await alice.page.waitForSelector("#password-dialog", { state: "hidden" });
    await expect.poll(() => alice.page.locator("#other-devices .device").count()).toBe(0);
    await alice.page.click("#devices-close");

    await alice2.page.waitForSelector("#auth-view:not([hidden])", { timeout: 15_000 });
    expect(await alice2.page.textContent("#auth-notice")).toMatch(/session ended/i);
    await shot(alice2, "10-removed-device");
    // Logging in again from that browser links it as a new device: pending again.
    expect(await login(alice2)).toBe("pending");
    await alice2.page.click("#pending-cancel");
    await alice2.page.waitForSelector("#auth-view:not([hidden])");
  });

  it("a contact's new identity raises a warning; trusting it lets messages reach them", {
    timeout: 120_000,
  }, async () => {
    // Bob lost his devices and resets his identity (here with the library, as another app would).
    const bobAgain = new ParleyClient({ baseUrl: baseUrl() });
    await bobAgain.resetIdentity(bob.name, bob.password);

    // Bob's old browser was revoked by the reset: back to the login screen.
    await bob.page.waitForSelector("#auth-view:not([hidden])", { timeout: 15_000 });
    await shot(bob, "11-old-device-after-reset");

    const warning = alice.page.locator("#identity-warnings .identity-warning");
    await warning.waitFor({ timeout: 15_000 });
    expect(await warning.textContent()).toContain(`${bob.name}'s safety key changed`);
    await shot(alice, "12-identity-warning");

    // Until trusted, nothing is sent to bob.
    await openConversation(alice, "Browser test");
    await alice.page.fill("#message-input", "blocked until trusted");
    await alice.page.click("#send-button");
    await expect.poll(() => alice.page.textContent("#status")).toMatch(/safety key changed/);

    await warning.locator(".trust-identity").click();
    await warning.waitFor({ state: "detached" });
    const after = await say(alice, "After trusting bob's new key");
    const conversation = (await bobAgain.allConversations()).find((c) => c.title === "Browser test")!;
    const read = await bobAgain.messages(conversation.conversationId, { limit: 10 }); // newest first
    expect(read[0]).toMatchObject({ ok: true, text: after });
    expect(read.some((m) => m.ok && m.text === "blocked until trusted")).toBe(false);
    await shot(alice, "13-after-trust");
  });

  it("bob removes carol: she cannot decrypt anything posted after", { timeout: 60_000 }, async () => {
    const bobNode = new ParleyClient({ baseUrl: baseUrl() });
    const carol = new ParleyClient({ baseUrl: baseUrl() });
    const carolName = uniqueName("carol");
    await bobNode.register(uniqueName("bob"), password());
    await carol.register(carolName, password());
    const { conversationId } = await bobNode.createConversation([carolName], { title: "with carol" });
    await bobNode.sendMessage(conversationId, "while carol is in");
    expect((await carol.messages(conversationId)).map((m) => m.ok && m.text)).toEqual(["while carol is in"]);

    await bobNode.removeParticipant(conversationId, carolName);
    const sent = await bobNode.sendMessage(conversationId, "after carol left"); // rotates first
    expect(sent.keyEpoch).toBe(3); // epoch 2 came right after creation; the removal calls for epoch 3
    // Carol can fetch no newer key (nor the messages) ...
    await expect(carol.getConversation(conversationId)).rejects.toMatchObject({ status: 403 });
    await expect(carol.rawMessages(conversationId)).rejects.toMatchObject({ status: 403 });
    // ... and the keys she holds do not open what was posted after, even if the ciphertext leaks to her.
    const [leaked] = await bobNode.rawMessages(conversationId, { after: sent.messageId - 1 });
    const attempt = await carol.decrypt(leaked!);
    expect(attempt.ok).toBe(false);
  });

  it("no browser ever sent or received a plaintext, and no page logged an error", () => {
    expectNoPlaintext(devices, secrets);
    // Chromium logs every refused request; the sessions these tests end are refused by design (401).
    const ended = /^console: Failed to load resource: .* 401 \(Unauthorized\)$/;
    for (const d of devices)
      expect(
        d.problems.filter((p) => !ended.test(p)),
        d.name,
      ).toEqual([]);
  });
});
