/**
 * Small DOM helpers shared by the views, and the one place that turns errors into sentences a
 * person can act on (the library's own messages and stacks go to the console, never on screen).
 */
import { IdentityChangedError, MissingKeyError, ParleyError, type ReceivedMessage } from "../client/index.ts";

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
};

/** `h("button", { class: "x", type: "button" }, "text", child)`: attributes, then text or nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | undefined> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

const statusLine = () => $("status");

/** The status line at the bottom of the page (role=status: read out by screen readers). */
export function setStatus(text: string, kind: "info" | "error" = "info"): void {
  statusLine().textContent = text;
  statusLine().dataset.kind = kind;
}

/** What to tell a person about a failure. `context` picks the wording of the common cases. */
export function describe(err: unknown, context: "login" | "register" | "password" | "other" = "other"): string {
  if (err instanceof IdentityChangedError) {
    return `${err.username}'s safety key changed. Check it with them, then choose "Trust new key" above.`;
  }
  if (err instanceof MissingKeyError) return "This device does not have the key for that conversation yet.";
  if (err instanceof ParleyError) {
    if (err.status === 0 || err.status >= 500) return "The server could not be reached. Try again in a moment.";
    if (err.status === 429) return "Too many attempts. Wait a minute, then try again.";
    if (context === "login" && err.status === 401) return "That username and password do not match.";
    if (context === "register" && err.status === 409) return "That username is taken. Choose another one.";
    if (context === "register" && err.status === 422) return "Check the username (3 to 32 letters, digits, _ . or -).";
    if (context === "password" && err.status === 403) return "That password is not right.";
    if (err.status === 401) return "Your session ended. Log in again.";
    if (err.status === 403 && /linked/i.test(err.message)) return "This device is not approved yet.";
    if (err.status === 403 && /accept/i.test(err.message)) return "Accept this conversation first to reply.";
    if (err.status === 403 && /cannot be added/i.test(err.message)) {
      return "That person can't be added: they don't accept conversations from you.";
    }
    if (err.status === 403) return "You are not allowed to do that here.";
    if (err.status === 404) return "That user or conversation does not exist.";
    if (err.status === 409) return "Something changed meanwhile. Try again.";
    if (err.status === 422) return "Check what you typed and try again.";
  }
  if (err instanceof TypeError && /fetch|network/i.test(err.message)) {
    return "The server could not be reached. Check your connection.";
  }
  if (err instanceof Error && /comparison codes differ/.test(err.message)) {
    return "The codes do not match: that device was not approved.";
  }
  return "Something went wrong. Try again.";
}

/** The console side of a failure: refusals the page explains are warnings; anything else an error. */
export function logFailure(err: unknown): void {
  if (err instanceof ParleyError || err instanceof IdentityChangedError) console.warn(err);
  else console.error(err);
}

/** Disables a form's controls while `fn` runs. */
export async function busy<T>(root: HTMLElement | undefined, fn: () => Promise<T>): Promise<T> {
  const controls = root ? [...root.querySelectorAll<HTMLButtonElement | HTMLInputElement>("button, input")] : [];
  const before = controls.map((c) => c.disabled);
  for (const c of controls) c.disabled = true;
  root?.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } finally {
    controls.forEach((c, i) => {
      c.disabled = before[i] ?? false;
    });
    root?.removeAttribute("aria-busy");
  }
}

/** "Chrome on Linux": a device name people recognise in the Devices list. */
export function browserDeviceName(ua = navigator.userAgent): string {
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /Firefox\//.test(ua)
      ? "Firefox"
      : /Chrom(e|ium)\//.test(ua)
        ? "Chrome"
        : /Safari\//.test(ua)
          ? "Safari"
          : "Browser";
  const os = /Android/.test(ua)
    ? "Android"
    : /iPhone|iPad/.test(ua)
      ? "iOS"
      : /Mac OS X/.test(ua)
        ? "macOS"
        : /Windows/.test(ua)
          ? "Windows"
          : /Linux|X11/.test(ua)
            ? "Linux"
            : "";
  return os ? `${browser} on ${os}` : browser;
}

/** "just now", "today at 14:02", "3 Nov 2026", for device lists. */
export function when(iso: string | null): string {
  if (!iso) return "never";
  const d = new Date(iso);
  if (Math.abs(Date.now() - d.getTime()) < 120_000) return "just now";
  return d.toDateString() === new Date().toDateString()
    ? `today at ${d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" })}`
    : d.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" });
}

/** Why a message cannot be shown, in words (deleted, or not verified or decrypted). */
export function unreadable(message: ReceivedMessage): string {
  if (message.deleted) return "This message was deleted.";
  const error = message.ok ? undefined : message.error;
  if (error instanceof MissingKeyError) return "🔒 Sent before this device had this conversation's key.";
  if (error instanceof IdentityChangedError) return `🔒 ${describe(error)}`;
  return "🔒 This message could not be verified or decrypted on this device.";
}
