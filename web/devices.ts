/**
 * Devices: the "Devices" dialog (this device, the others, the ones waiting for approval) and the
 * approval prompts shown above the chat when a new device of this account logs in (`devicePending`
 * on the inbox). Approving compares codes: the new device shows its code; this device shows the
 * code it computes for the pending device's keys; the person approves only if they are the same.
 * Rejecting a pending device or removing another one revokes it, which asks for the password.
 */
import type { OwnDevice, ParleyClient, PendingDevice } from "../client/index.ts";
import { $, busy, describe, h, logFailure, setStatus, when } from "./dom.ts";

const ui = {
  dialog: $<HTMLDialogElement>("devices-dialog"),
  close: $<HTMLButtonElement>("devices-close"),
  loading: $("devices-loading"),
  pendingSection: $("pending-devices-section"),
  pending: $<HTMLUListElement>("pending-devices"),
  thisDevice: $<HTMLUListElement>("this-device"),
  others: $<HTMLUListElement>("other-devices"),
  error: $("devices-error"),
  safetyKey: $("safety-key"),
  prompts: $<HTMLUListElement>("approval-prompts"),
  password: $<HTMLDialogElement>("password-dialog"),
  passwordForm: $<HTMLFormElement>("password-form"),
  passwordHeading: $("password-heading"),
  passwordText: $("password-text"),
  passwordInput: $<HTMLInputElement>("confirm-password"),
  passwordError: $("password-error"),
  passwordConfirm: $<HTMLButtonElement>("password-confirm"),
  passwordCancel: $<HTMLButtonElement>("password-cancel"),
};

/** The code as the pending device shows it: "0421 9873 1150". */
const codeBlock = (code: string) => h("span", { class: "code" }, code);

export class Devices {
  private revoking: { device: OwnDevice; onDone: () => void } | undefined;
  private readonly client: ParleyClient;

  constructor(client: ParleyClient) {
    this.client = client;
    ui.close.addEventListener("click", () => ui.dialog.close());
    ui.passwordCancel.addEventListener("click", () => ui.password.close());
    ui.passwordForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.confirmRevoke();
    });
  }

  setSafetyKey(fingerprint: string): void {
    ui.safetyKey.textContent = fingerprint;
  }

  async open(): Promise<void> {
    ui.error.textContent = "";
    if (!ui.dialog.open) ui.dialog.showModal();
    await this.refresh();
  }

  /** Re-reads the device list: the dialog if it is open, the prompts always. */
  async refresh(): Promise<void> {
    let all: OwnDevice[];
    let pending: PendingDevice[];
    try {
      [all, pending] = await Promise.all([this.client.devices(), this.client.pendingDevices()]);
    } catch (err) {
      logFailure(err);
      ui.error.textContent = describe(err);
      return;
    }
    this.renderPrompts(pending);
    ui.loading.hidden = true;
    ui.pendingSection.hidden = pending.length === 0;
    ui.pending.replaceChildren(...pending.map((d) => this.pendingItem(d, "panel")));
    const active = all.filter((d) => d.status === "active");
    ui.thisDevice.replaceChildren(...active.filter((d) => d.current).map((d) => this.deviceItem(d)));
    const others = active.filter((d) => !d.current);
    ui.others.replaceChildren(
      ...(others.length ? others.map((d) => this.deviceItem(d)) : [h("li", { class: "note" }, "None.")]),
    );
  }

  clear(): void {
    ui.prompts.replaceChildren();
    if (ui.dialog.open) ui.dialog.close();
    if (ui.password.open) ui.password.close();
    ui.loading.hidden = false;
    for (const list of [ui.pending, ui.thisDevice, ui.others]) list.replaceChildren();
  }

  private renderPrompts(pending: PendingDevice[]): void {
    ui.prompts.replaceChildren(...pending.map((d) => this.pendingItem(d, "prompt")));
  }

  private deviceItem(d: OwnDevice): HTMLLIElement {
    const li = h(
      "li",
      { class: "device", "data-device-id": String(d.deviceId) },
      h(
        "div",
        {},
        h("strong", {}, d.name),
        h("div", { class: "note" }, `Added ${when(d.createdAt)} · last active ${when(d.lastSeenAt)}`),
      ),
    );
    if (!d.current) {
      const remove = h("button", { type: "button", class: "secondary danger-text remove-device" }, "Remove");
      remove.setAttribute("aria-label", `Remove ${d.name}`);
      remove.addEventListener("click", () => this.askPassword(d, "remove", () => void this.refresh()));
      li.append(remove);
    }
    return li;
  }

  /** A pending device, as a prompt above the chat or as a row of the dialog. */
  private pendingItem(d: PendingDevice, where: "prompt" | "panel"): HTMLLIElement {
    const textId = `pending-${where}-${d.deviceId}`;
    const text = h(
      "div",
      { class: "prompt-text", id: textId },
      h("strong", {}, `“${d.name}” wants to join your account.`),
      ` It logged in ${when(d.createdAt)}. Approve it only if its screen shows this code: `,
      codeBlock(d.comparisonCode),
    );
    const approve = h("button", { type: "button", class: "approve-device", "aria-describedby": textId }, "Approve");
    const reject = h(
      "button",
      { type: "button", class: "secondary reject-device", "aria-describedby": textId },
      "Reject",
    );
    const li = h(
      "li",
      {
        class: where === "prompt" ? "banner prompt approval-prompt" : "device pending",
        "data-device-id": String(d.deviceId),
      },
      text,
      h("div", { class: "buttons" }, approve, reject),
    );
    approve.addEventListener("click", () => {
      void busy(li, async () => {
        try {
          setStatus(`Approving “${d.name}”: sharing your conversation keys with it…`);
          await this.client.approveDevice(d.deviceId, { comparisonCode: d.comparisonCode });
          setStatus(`“${d.name}” is approved. It can now read your conversations.`);
          await this.refresh();
        } catch (err) {
          logFailure(err);
          setStatus(describe(err), "error");
        }
      });
    });
    reject.addEventListener("click", () => this.askPassword(d, "reject", () => void this.refresh()));
    return li;
  }

  private askPassword(device: OwnDevice, kind: "remove" | "reject", onDone: () => void): void {
    this.revoking = { device, onDone };
    ui.passwordHeading.textContent = kind === "reject" ? "Reject this device" : "Remove this device";
    ui.passwordText.textContent =
      kind === "reject"
        ? `“${device.name}” will not be linked to your account. Enter your password to confirm.`
        : `“${device.name}” will be signed out and lose access to your conversations. Enter your password to confirm.`;
    ui.passwordConfirm.textContent = kind === "reject" ? "Reject" : "Remove";
    ui.passwordError.textContent = "";
    ui.passwordInput.value = "";
    ui.password.showModal();
    ui.passwordInput.focus();
  }

  private async confirmRevoke(): Promise<void> {
    const target = this.revoking;
    if (!target) return;
    await busy(ui.passwordForm, async () => {
      try {
        await this.client.revokeDevice(target.device.deviceId, ui.passwordInput.value);
        ui.passwordInput.value = "";
        ui.password.close();
        setStatus(`“${target.device.name}” was removed from your account.`);
        target.onDone();
      } catch (err) {
        logFailure(err);
        ui.passwordError.textContent = describe(err, "password");
      }
    });
  }
}
