// Issue #13 in the reference web client, in Chromium (see browser.test.ts for the setup): unread
// badges going up and down, typing, read ticks (and turning read receipts off), reply, react, edit,
// delete for everyone, and a 30-second disappearing message that leaves both screens and reads as a
// tombstone over the API. The harness does not expose wrangler's persist directory, so the sweep's
// erasure of the bytes is not checked here (the unit tests cover the alarm); the API check is.
// Screenshots: test-results/30-*.png to 37-*.png.

import { randomBytes } from "node:crypto";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Device,
  expectNoPlaintext,
  openConversation,
  openDevice,
  register,
  send,
  shot,
  startConversation,
  waitForText,
} from "./browser-helpers.js";
import { launchChromium } from "./chromium.js";
import { api, uniqueName } from "./helpers.js";

let browser: Browser;
let alice: Device;
let bob: Device;
const secrets: string[] = [];
const say = async (d: Device, label: string) => {
  const text = `${label} ${randomBytes(3).toString("hex")}`;
  secrets.push(text);
  await send(d, text);
  return text;
};
/** The message whose text is exactly `text` (a reply's quote of it does not count). */
const message = (d: Device, text: string) =>
  d.page.locator("#messages .message").filter({
    has: d.page.locator(".text", { hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) }),
  });
/** Hovers a message (its actions appear) and clicks one of them. */
async function act(d: Device, text: string, action: string): Promise<void> {
  const li = message(d, text);
  await li.hover();
  await li.locator(`[data-action="${action}"]`).click();
}
const badge = (d: Device, title: string) =>
  d.page.locator(".conversation-item", { hasText: title }).getAttribute("data-unread");

describe("web client: read state, typing, relations, delete, disappearing messages", () => {
  beforeAll(async () => {
    browser = await launchChromium();
    alice = await openDevice(browser, uniqueName("feat_alice"), `pw-${randomBytes(9).toString("hex")}`);
    bob = await openDevice(browser, uniqueName("feat_bob"), `pw-${randomBytes(9).toString("hex")}`);
  });

  afterAll(async () => {
    for (const d of [alice, bob]) expect(d?.problems ?? []).toEqual([]);
    await browser?.close();
  });

  let m1: string;
  let m2: string;

  it("unread badges go up live and down when read; the sender sees Read", { timeout: 90_000 }, async () => {
    await register(alice);
    await register(bob);
    await startConversation(alice, bob.name, "Features");
    m1 = await say(alice, "First one");
    m2 = await say(alice, "Second one");
    await expect.poll(() => badge(bob, "Features"), { timeout: 15_000 }).toBe("2");
    expect(await bob.page.title()).toBe("(2) Parley");
    await shot(bob, "30-unread-badge");
    await openConversation(bob, "Features");
    await waitForText(bob, m2);
    await expect.poll(() => badge(bob, "Features")).toBe("0");
    expect(await bob.page.title()).toBe("Parley");
    await bob.page.click("#accept-request");
    await bob.page.waitForSelector("#composer:not([hidden])");
    // Bob shares read receipts (the default): alice's ticks turn to Read live.
    await expect.poll(() => message(alice, m2).locator(".receipt").textContent()).toContain("Read");
    await shot(alice, "31-read-ticks");

    // A second conversation: its badge goes up while bob reads the first one, and down once opened.
    await startConversation(alice, bob.name, "Side");
    const s1 = await say(alice, "Side note");
    await expect.poll(() => badge(bob, "Side"), { timeout: 15_000 }).toBe("1");
    await openConversation(bob, "Side");
    await waitForText(bob, s1);
    await expect.poll(() => badge(bob, "Side")).toBe("0");
    expect(await bob.page.isVisible("#request-banner")).toBe(false); // bob accepted alice already
    await openConversation(bob, "Features");
    await openConversation(alice, "Features");
  });

  it("typing, a reply, a reaction, an edit and a delete show live on both screens", { timeout: 90_000 }, async () => {
    await bob.page.locator("#message-input").pressSequentially("typing slowly", { delay: 40 });
    await expect.poll(() => alice.page.textContent("#typing"), { timeout: 10_000 }).toBe(`${bob.name} is typing…`);
    await shot(alice, "32-typing");
    await bob.page.fill("#message-input", "");
    await expect.poll(() => alice.page.textContent("#typing"), { timeout: 10_000 }).toBe(""); // expires

    // Bob replies to m1 (keyboard: focus the action, Enter).
    const reply = message(bob, m1).locator('[data-action="reply"]');
    await reply.focus();
    await bob.page.keyboard.press("Enter");
    expect(await bob.page.textContent("#composer-context-text")).toContain(`Replying to ${alice.name}`);
    await shot(bob, "33-replying");
    const r1 = await say(bob, "Answering the first");
    expect(await message(bob, r1).locator(".reply-quote").textContent()).toContain(m1);
    await waitForText(alice, r1);
    expect(await message(alice, r1).locator(".reply-quote").textContent()).toContain(m1);

    // Alice reacts to the reply; bob adds the same reaction from the chip.
    await act(alice, r1, "react-👍");
    await expect.poll(() => message(bob, r1).locator(".reaction").textContent()).toBe("👍 1");
    await message(bob, r1).locator(".reaction").click();
    await expect.poll(() => message(alice, r1).locator(".reaction").textContent()).toBe("👍 2");

    // Alice edits m2.
    await act(alice, m2, "edit");
    expect(await alice.page.inputValue("#message-input")).toBe(m2);
    const edited = `${m2} (fixed)`;
    secrets.push(edited);
    await alice.page.fill("#message-input", edited);
    await alice.page.click("#send-button");
    await waitForText(bob, edited);
    expect(await message(bob, edited).locator(".edited").textContent()).toBe("(edited)");
    expect(await bob.page.locator("#messages .message .text", { hasText: m2 }).count()).toBe(1); // replaced, not added

    // Alice deletes m1 for everyone (after confirming).
    alice.page.once("dialog", (d) => void d.accept());
    await act(alice, m1, "delete");
    for (const d of [alice, bob]) {
      await expect.poll(() => message(d, "This message was deleted.").count()).toBe(1);
      expect(await d.page.locator("#messages .text", { hasText: m1 }).count()).toBe(0);
    }
    await expect.poll(() => message(bob, r1).locator(".reply-quote").textContent()).toContain("no longer available");
    await shot(alice, "34-relations-alice");
    await shot(bob, "34-relations-bob");
    expectNoPlaintext([alice, bob], secrets);
  });

  it("with read receipts off, bob's reads are not shown to alice", { timeout: 60_000 }, async () => {
    await bob.page.click("#settings-button");
    await bob.page.waitForSelector("#settings-dialog[open]");
    await expect.poll(() => bob.page.isChecked("#read-receipts")).toBe(true);
    await bob.page.click("#read-receipts");
    await expect.poll(() => bob.page.textContent("#status")).toContain("Read receipts are off");
    await shot(bob, "35-privacy-receipts-off");
    await bob.page.click("#settings-close");
    const m3 = await say(alice, "Unseen tick");
    await waitForText(bob, m3);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await message(alice, m3).locator(".receipt").textContent()).toBe("✓ Sent");
  });

  it("a 30-second disappearing message vanishes on both screens and reads as a tombstone", {
    timeout: 120_000,
  }, async () => {
    await alice.page.selectOption("#ttl-select", "30");
    await expect.poll(() => bob.page.inputValue("#ttl-select")).toBe("30");
    await expect.poll(() => bob.page.textContent("#status")).toContain("disappear after 30 seconds");
    const gone = await say(alice, "This will vanish");
    await waitForText(bob, gone);
    expect(await message(bob, gone).locator(".expires").textContent()).toMatch(/disappears at/);
    await shot(bob, "36-disappearing");
    const id = await message(alice, gone).getAttribute("data-message-id");
    const conversationId = await alice.page.getAttribute(
      "#conversation-list [aria-current='true']",
      "data-conversation-id",
    );
    for (const d of [alice, bob]) {
      await expect.poll(() => message(d, gone).count(), { timeout: 45_000, interval: 1_000 }).toBe(0);
    }
    await shot(alice, "37-vanished");
    const history = await api<{ messageId: number; deleted: boolean; ciphertext: string | null }[]>(
      "GET",
      `/conversations/${conversationId}/messages`,
      { token: bob.tokens.at(-1)! },
    );
    const stored = history.body.find((m) => m.messageId === Number(id));
    expect(stored).toMatchObject({ deleted: true, ciphertext: null });
  });
});
