/**
 * The screens before the chat: loading, sign in / create account, and the pending-device screen
 * (a new browser shows its comparison code and waits until another device approves it).
 */
import { $, setStatus } from "../dom.ts";

const ui = {
  boot: $("boot-view"),
  auth: $("auth-view"),
  form: $<HTMLFormElement>("auth-form"),
  username: $<HTMLInputElement>("username"),
  password: $<HTMLInputElement>("password"),
  notice: $("auth-notice"),
  error: $("auth-error"),
  pending: $("pending-view"),
  code: $("pending-code"),
  cancel: $<HTMLButtonElement>("pending-cancel"),
  chat: $("chat-view"),
  whoami: $("whoami"),
  devices: $<HTMLButtonElement>("devices-button"),
  blocked: $<HTMLButtonElement>("settings-button"),
  logout: $<HTMLButtonElement>("logout"),
};

export type Screen = "boot" | "auth" | "pending" | "chat";

/** Shows one screen; the header's buttons only once someone is logged in. */
export function show(screen: Screen): void {
  ui.boot.hidden = screen !== "boot";
  ui.auth.hidden = screen !== "auth";
  ui.pending.hidden = screen !== "pending";
  ui.chat.hidden = screen !== "chat";
  ui.devices.hidden = screen !== "chat";
  ui.blocked.hidden = screen !== "chat";
  ui.logout.hidden = screen !== "chat";
  document.body.dataset.screen = screen;
  // Tests (and people) can act once the first real screen is up.
  if (screen !== "boot") document.documentElement.dataset.ready = "true";
  if (screen === "boot" || screen === "auth") {
    ui.whoami.textContent = "";
    delete ui.whoami.dataset.username;
  }
}

/** The sign-in screen, with a notice (why the person is here again) and the last username. */
export function showAuth(notice?: { text: string; kind: "info" | "error" }, username?: string): void {
  show("auth");
  ui.notice.hidden = !notice;
  ui.notice.textContent = notice?.text ?? "";
  ui.notice.dataset.kind = notice?.kind ?? "info";
  ui.error.textContent = "";
  ui.password.value = "";
  if (username) ui.username.value = username;
  (ui.username.value ? ui.password : ui.username).focus();
  setStatus("");
}

export function authError(text: string): void {
  ui.error.textContent = text;
  ui.password.focus();
}

export function showPending(username: string, code: string): void {
  show("pending");
  ui.whoami.textContent = username;
  ui.code.textContent = code;
  setStatus("");
}

export function setWhoami(username: string): void {
  ui.whoami.textContent = username;
  ui.whoami.dataset.username = username;
}

/** Wires the sign-in form: `submit(kind, username, password)` runs with the form disabled. */
export function onAuthSubmit(submit: (kind: "login" | "register", username: string, password: string) => void): void {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null;
    ui.error.textContent = "";
    ui.notice.hidden = true;
    submit(submitter?.value === "register" ? "register" : "login", ui.username.value.trim(), ui.password.value);
  });
}

export const authForm = ui.form;
export const buttons = { logout: ui.logout, devices: ui.devices, blocked: ui.blocked, cancelPending: ui.cancel };
