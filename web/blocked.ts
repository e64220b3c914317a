/**
 * "Privacy" (header): whether this account sends read receipts (`PUT /users/me/settings`), and
 * "Blocked people": who this account blocked, with Unblock, and a form to block someone.
 * Blocked people cannot start a conversation with this account or add it to one (the server
 * answers them 403); declining a message request with "Decline and block" adds to this list too.
 */
import { type BlockedUser, type ParleyClient, ParleyError } from "../client/index.ts";
import { $, busy, describe, h, logFailure, setStatus, when } from "./dom.ts";

const ui = {
  dialog: $<HTMLDialogElement>("settings-dialog"),
  close: $<HTMLButtonElement>("settings-close"),
  loading: $("blocked-loading"),
  list: $<HTMLUListElement>("blocked-list"),
  form: $<HTMLFormElement>("block-form"),
  input: $<HTMLInputElement>("block-input"),
  error: $("settings-error"),
  receipts: $<HTMLInputElement>("read-receipts"),
};

function blockError(err: unknown, username: string): string {
  if (err instanceof ParleyError && err.status === 422) return "You can't block yourself.";
  if (err instanceof ParleyError && err.status === 404) return `There is no user called “${username}”.`;
  return describe(err);
}

export class BlockedPeople {
  private readonly client: ParleyClient;

  constructor(client: ParleyClient) {
    this.client = client;
    ui.close.addEventListener("click", () => ui.dialog.close());
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.block(ui.input.value.trim());
    });
    ui.receipts.addEventListener("change", () => void this.setReceipts(ui.receipts.checked));
  }

  private async setReceipts(on: boolean): Promise<void> {
    ui.error.textContent = "";
    try {
      await busy(ui.dialog, () =>
        this.client.http.request("PUT", "/users/me/settings", { body: { readReceipts: on } }),
      );
      setStatus(on ? "Read receipts are on." : "Read receipts are off: others won't see when you have read.");
    } catch (err) {
      logFailure(err);
      ui.receipts.checked = !on;
      ui.error.textContent = describe(err);
    }
  }

  async open(): Promise<void> {
    ui.error.textContent = "";
    if (!ui.dialog.open) ui.dialog.showModal();
    await this.refresh();
  }

  clear(): void {
    if (ui.dialog.open) ui.dialog.close();
    ui.list.replaceChildren();
    ui.loading.hidden = false;
  }

  async refresh(): Promise<void> {
    let people: BlockedUser[];
    try {
      const [me, blocked] = await Promise.all([this.client.me(), this.client.blocked()]);
      ui.receipts.checked = me.settings.readReceipts;
      people = blocked;
    } catch (err) {
      logFailure(err);
      ui.error.textContent = describe(err);
      return;
    }
    ui.loading.hidden = true;
    ui.list.replaceChildren(
      ...(people.length
        ? people.map((p) => this.item(p))
        : [h("li", { class: "note empty-blocked" }, "You have not blocked anyone.")]),
    );
  }

  private item(p: BlockedUser): HTMLLIElement {
    const unblock = h("button", { type: "button", class: "secondary unblock" }, "Unblock");
    unblock.setAttribute("aria-label", `Unblock ${p.username}`);
    const li = h(
      "li",
      { class: "device blocked-user", "data-username": p.username },
      h("div", {}, h("strong", {}, p.username), h("div", { class: "note" }, `Blocked ${when(p.blockedAt)}`)),
      unblock,
    );
    unblock.addEventListener("click", () => {
      void busy(li, async () => {
        try {
          await this.client.unblock(p.username);
          setStatus(`${p.username} is no longer blocked.`);
          await this.refresh();
        } catch (err) {
          logFailure(err);
          ui.error.textContent = describe(err);
        }
      });
    });
    return li;
  }

  private async block(username: string): Promise<void> {
    if (username === "") return;
    ui.error.textContent = "";
    await busy(ui.form, async () => {
      try {
        await this.client.block(username);
        ui.input.value = "";
        setStatus(`${username} is blocked: they can no longer add you to conversations.`);
        await this.refresh();
      } catch (err) {
        logFailure(err);
        ui.error.textContent = blockError(err, username);
      }
    });
  }
}
