import type { Conversation } from "../../client/index.ts";
import { $, h, setStatus } from "../dom.ts";

/** Disappearing messages: the choices offered per conversation and how a change is said. */
export const TTL_CHOICES: [seconds: number | null, label: string][] = [
  [null, "Off"],
  [30, "30 seconds"],
  [300, "5 minutes"],
  [3600, "1 hour"],
  [86_400, "1 day"],
  [604_800, "1 week"],
];

/** "turned disappearing messages off" / "set new messages to disappear after 30 seconds". */
export function describeTtl(seconds: number | null): string {
  if (seconds === null) return "turned disappearing messages off.";
  const label = TTL_CHOICES.find(([s]) => s === seconds)?.[1] ?? `${seconds} seconds`;
  return `set new messages to disappear after ${label}.`;
}

/** The header's disappearing-messages select for the open conversation. */
export class TtlSelect {
  private readonly select = $<HTMLSelectElement>("ttl-select");

  /** `set` stores a new setting for the open conversation (and shows the updated conversation). */
  constructor(set: (ttl: number | null) => Promise<void>, run: (fn: () => Promise<void>) => void) {
    this.select.replaceChildren(
      ...TTL_CHOICES.map(([value, label]) => h("option", { value: String(value ?? "") }, label)),
    );
    this.select.addEventListener("change", () => {
      const ttl = this.select.value === "" ? null : Number(this.select.value);
      run(async () => {
        await set(ttl);
        setStatus(`You ${describeTtl(ttl)}`);
      });
    });
  }

  show(c: Conversation, disabled = c.status === "invited"): void {
    this.select.value = String(c.messageTtlSeconds ?? "");
    this.select.disabled = disabled;
  }

  /** Someone else changed it: show it and say so. */
  changed(c: Conversation, by: string): void {
    this.select.value = String(c.messageTtlSeconds ?? "");
    setStatus(`${by} ${describeTtl(c.messageTtlSeconds)}`);
  }
}
