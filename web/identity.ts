/**
 * Safety warnings: a contact's account key changed (they reset their account, or someone is in
 * the middle). The library refuses to encrypt for them until the person here accepts the new key
 * ("Trust new key", `trustIdentity`), ideally after comparing safety keys with them.
 */
import { fingerprint, type IdentityChangedEvent, type ParleyClient } from "../client/index.ts";
import { $, busy, describe, h, logFailure, setStatus } from "./dom.ts";

export class IdentityWarnings {
  private readonly list = $<HTMLUListElement>("identity-warnings");
  private readonly shown = new Map<number, HTMLLIElement>();

  private readonly client: ParleyClient;

  constructor(client: ParleyClient) {
    this.client = client;
  }

  /** From `onIdentityChanged`, or from an `IdentityChangedError` (then the key comes from the pin). */
  async show(
    event: Pick<IdentityChangedEvent, "userId" | "username"> & { current?: Uint8Array | null },
  ): Promise<void> {
    const current = event.current ?? (await this.client.identity(event.userId))?.changedTo ?? null;
    const key = current ? await fingerprint(current) : null;
    const id = `identity-${event.userId}`;
    const text = h(
      "div",
      { class: "prompt-text", id },
      h("strong", {}, `${event.username}'s safety key changed.`),
      " They may have reset their account on a new device, or someone may be trying to read your messages. ",
      "Ask them (in person or on a call) whether their safety key is ",
      key ? h("code", { class: "fingerprint" }, key) : "the one their app shows now",
      " before trusting it. Until then nothing is sent to them.",
    );
    const trust = h("button", { type: "button", class: "trust-identity", "aria-describedby": id }, "Trust new key");
    const li = h("li", { class: "banner warning identity-warning", "data-user-id": String(event.userId) }, text, trust);
    trust.addEventListener("click", () => {
      void busy(li, async () => {
        try {
          await this.client.trustIdentity(event.userId);
          this.dismiss(event.userId);
          setStatus(`You now trust ${event.username}'s new safety key.`);
        } catch (err) {
          logFailure(err);
          setStatus(describe(err), "error");
        }
      });
    });
    this.shown.get(event.userId)?.remove();
    this.shown.set(event.userId, li);
    this.list.append(li);
  }

  dismiss(userId: number): void {
    this.shown.get(userId)?.remove();
    this.shown.delete(userId);
  }

  clear(): void {
    this.list.replaceChildren();
    this.shown.clear();
  }
}
