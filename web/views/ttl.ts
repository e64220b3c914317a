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
