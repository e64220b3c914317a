import { AppError } from "./errors";

const listIds = (ids: number[]) => [...ids].sort((a, b) => a - b).join(", ");

/** 422 naming the devices without a key and the keys for devices that should have none; nothing if exact. */
export function assertExactCoverage(expected: number[], given: number[]): void {
  const want = new Set(expected);
  const have = new Set(given);
  const missing = expected.filter((id) => !have.has(id));
  const unexpected = given.filter((id) => !want.has(id));
  if (missing.length === 0 && unexpected.length === 0) return;
  throw new AppError("validation_failed", "keys must cover exactly the active devices of the participants", {
    details: [
      ...(missing.length ? [{ path: "keys", message: `missing device ids: ${listIds(missing)}` }] : []),
      ...(unexpected.length ? [{ path: "keys", message: `unexpected device ids: ${listIds(unexpected)}` }] : []),
    ],
  });
}

/** 409 for an epoch commit that is not `current + 1`. */
export const staleEpoch = (current: number) =>
  new AppError("conflict", "the epoch has moved on: fetch the conversation and retry", {
    details: [{ path: "epoch", message: `current is ${current}` }],
  });
