/**
 * The "People" dialog of the open conversation: who is in it (admins and pending requests marked),
 * adding someone (anyone who has accepted), removing someone (admins only; the server refuses others),
 * and leaving. The chat view (chat.ts) opens it and re-renders it whenever membership changes.
 */
import { type Conversation, type ParleyClient, ParleyError } from "../../client/index.ts";
import { $, busy, describe, h, logFailure, setStatus } from "../dom.ts";

const ui = {
  dialog: $<HTMLDialogElement>("details-dialog"),
  close: $<HTMLButtonElement>("details-close"),
  role: $("details-role"),
  list: $<HTMLUListElement>("details-participants"),
  addForm: $<HTMLFormElement>("add-participant-form"),
  addInput: $<HTMLInputElement>("add-participant-input"),
  error: $("details-error"),
  leave: $<HTMLButtonElement>("leave-conversation"),
};

export interface PeopleEvents {
  /** The conversation as it is now (after an add or a removal). */
  changed: (conversation: Conversation) => void;
  /** The caller left it. */
  left: (conversation: Conversation) => void;
}

/** What to say when adding `username` failed. */
function addError(err: unknown, username: string): string {
  if (err instanceof ParleyError) {
    if (err.status === 403 && /cannot be added/i.test(err.message)) {
      return `You can't add ${username}: they don't accept conversations from you.`;
    }
    if (err.status === 403 && /accept/i.test(err.message)) return "Accept this conversation before adding people.";
    if (err.status === 404 || err.status === 422) return `There is no user called “${username}”.`;
    if (err.status === 409 && /already/i.test(err.message)) return `${username} is already in this conversation.`;
  }
  return describe(err);
}

export class PeopleDialog {
  private conversation: Conversation | undefined;
  private readonly client: ParleyClient;
  private readonly events: PeopleEvents;

  constructor(client: ParleyClient, events: PeopleEvents) {
    this.client = client;
    this.events = events;
    ui.close.addEventListener("click", () => ui.dialog.close());
    ui.addForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.add(ui.addInput.value.trim());
    });
    ui.leave.addEventListener("click", () => void this.leave());
  }

  get isOpen(): boolean {
    return ui.dialog.open;
  }

  open(conversation: Conversation): void {
    ui.error.textContent = "";
    ui.addInput.value = "";
    this.render(conversation);
    if (!ui.dialog.open) ui.dialog.showModal();
  }

  close(): void {
    if (ui.dialog.open) ui.dialog.close();
    this.conversation = undefined;
  }

  /** Shows `conversation` (called again whenever it changes while the dialog is open). */
  render(conversation: Conversation): void {
    this.conversation = conversation;
    const me = this.client.userId;
    const mine = conversation.participants.find((p) => p.userId === me);
    const admin = mine?.role === "admin";
    const invited = conversation.status === "invited";
    ui.role.textContent = invited
      ? "This is a message request: accept it to reply or add people."
      : admin
        ? "You are an admin: you can add and remove people."
        : "Anyone can add people; only admins can remove others. You can leave at any time.";
    ui.addForm.hidden = invited;
    ui.leave.hidden = invited; // a request is declined instead
    ui.list.replaceChildren(
      ...conversation.participants.map((p) => {
        const name = h("strong", {}, p.userId === me ? `${p.username} (you)` : p.username);
        const badges = [
          ...(p.role === "admin" ? [h("span", { class: "badge" }, "admin")] : []),
          ...(p.status === "invited" ? [h("span", { class: "badge" }, "not accepted yet")] : []),
        ];
        const li = h("li", { class: "device participant", "data-username": p.username }, h("div", {}, name, ...badges));
        if (admin && p.userId !== me) {
          const remove = h("button", { type: "button", class: "secondary danger-text remove-participant" }, "Remove");
          remove.setAttribute("aria-label", `Remove ${p.username}`);
          remove.addEventListener("click", () => void this.remove(p.username, li));
          li.append(remove);
        }
        return li;
      }),
    );
  }

  private async add(username: string): Promise<void> {
    const c = this.conversation;
    if (!c || username === "") return;
    ui.error.textContent = "";
    await busy(ui.addForm, async () => {
      try {
        setStatus(`Adding ${username}: sharing a new key with everyone…`);
        const updated = await this.client.addParticipant(c.conversationId, username);
        ui.addInput.value = "";
        setStatus(`${username} was added. They see messages from now on.`);
        this.events.changed(updated);
      } catch (err) {
        logFailure(err);
        setStatus("");
        ui.error.textContent = addError(err, username);
      }
    });
  }

  private async remove(username: string, row: HTMLElement): Promise<void> {
    const c = this.conversation;
    if (!c) return;
    ui.error.textContent = "";
    await busy(row, async () => {
      try {
        await this.client.removeParticipant(c.conversationId, username);
        setStatus(`${username} was removed. The next message uses a new key they cannot read.`);
        this.events.changed(await this.client.getConversation(c.conversationId));
      } catch (err) {
        logFailure(err);
        ui.error.textContent =
          err instanceof ParleyError && err.status === 403
            ? "Only an admin of this conversation can remove other people."
            : describe(err);
      }
    });
  }

  private async leave(): Promise<void> {
    const c = this.conversation;
    if (!c) return;
    ui.error.textContent = "";
    await busy(ui.dialog, async () => {
      try {
        await this.client.leaveConversation(c.conversationId);
        this.close();
        this.events.left(c);
      } catch (err) {
        logFailure(err);
        ui.error.textContent = describe(err);
      }
    });
  }
}
