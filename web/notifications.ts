/**
 * Push notifications (issue #14): the "Notifications" toggle in the header. The service worker
 * (public/sw.js) is registered when the chat opens, but the browser asks for permission only when
 * the person turns notifications on. Turning on subscribes through the service worker's
 * PushManager and hands the subscription to the server for this device; turning off deletes it.
 * A click on a notification opens its conversation (a message from the service worker, or
 * `/?conversation=<id>` in a new window).
 */
import type { ParleyClient } from "../client/index.ts";
import { $, setStatus } from "./dom.ts";

const button = () => $<HTMLButtonElement>("notifications-button");
const CHOICE = "parley.notifications";

export class Notifications {
  private readonly client: ParleyClient;
  private readonly openConversation: (conversationId: number) => void;
  private registration: ServiceWorkerRegistration | undefined;

  constructor(client: ParleyClient, openConversation: (conversationId: number) => void) {
    this.client = client;
    this.openConversation = openConversation;
    button().addEventListener("click", () => void this.toggle());
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", (event: MessageEvent) => {
        const id = (event.data as { type?: string; conversationId?: unknown } | null)?.conversationId;
        if (event.data?.type === "openConversation" && Number.isSafeInteger(id)) this.openConversation(id as number);
      });
    }
  }

  static supported(): boolean {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  /** After sign-in: registers the service worker, shows the toggle in its current state. */
  async start(): Promise<void> {
    if (!Notifications.supported()) return;
    try {
      this.registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    } catch (err) {
      console.warn("service worker:", err);
      return;
    }
    const on =
      localStorage.getItem(CHOICE) === "on" &&
      Notification.permission === "granted" &&
      (await this.registration.pushManager.getSubscription()) !== null;
    this.show(on);
    button().hidden = false;
  }

  /** The conversation a notification click asked for (`/?conversation=<id>`), once. */
  takeRequestedConversation(): number | undefined {
    const id = Number(new URLSearchParams(location.search).get("conversation"));
    if (!Number.isSafeInteger(id) || id <= 0) return undefined;
    history.replaceState(null, "", "/");
    return id;
  }

  hide(): void {
    button().hidden = true;
  }

  private show(on: boolean): void {
    button().textContent = on ? "Notifications: on" : "Notifications: off";
    button().setAttribute("aria-pressed", String(on));
    button().dataset.state = on ? "on" : "off";
  }

  private async toggle(): Promise<void> {
    const on = button().dataset.state === "on";
    button().disabled = true;
    try {
      if (on) await this.turnOff();
      else await this.turnOn();
    } finally {
      button().disabled = false;
    }
  }

  private async turnOn(): Promise<void> {
    const permission = await Notification.requestPermission(); // only ever asked here, on a click
    if (permission !== "granted") {
      setStatus("Notifications are blocked for this site. Allow them in the browser's site settings first.", "error");
      return;
    }
    try {
      const registration = this.registration ?? (await navigator.serviceWorker.ready);
      await this.client.enablePush(registration.pushManager);
      localStorage.setItem(CHOICE, "on");
      this.show(true);
      setStatus("Notifications are on. You will see “New message” when this browser is closed or offline.");
    } catch (err) {
      console.warn("push:", err);
      setStatus("This browser could not turn on notifications (its push service did not answer).", "error");
    }
  }

  private async turnOff(): Promise<void> {
    try {
      await this.client.disablePush(this.registration?.pushManager);
    } catch (err) {
      console.warn("push:", err);
    }
    localStorage.setItem(CHOICE, "off");
    this.show(false);
    setStatus("Notifications are off for this browser.");
  }
}
