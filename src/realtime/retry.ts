/** Backoff between attempts of a call to an object: about 0.1, 0.4, 1.6 and 6.4 s (±50%), ≈13 s at most. */
export const BACKOFF_MS = [100, 400, 1600, 6400] as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `call` once per entry of `delaysMs`, each after waiting that long (with jitter), until one
 * succeeds; the last failure is rethrown. Only for calls that are safe to repeat.
 */
export async function attempt<T>(delaysMs: readonly number[], call: () => Promise<T>): Promise<T> {
  let failure: unknown;
  for (const delay of delaysMs) {
    if (delay > 0) await sleep(delay * (0.5 + Math.random()));
    try {
      return await call();
    } catch (err) {
      failure = err;
    }
  }
  throw failure;
}
