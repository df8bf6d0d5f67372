/**
 * The polling schedule while a lock is busy: exponential with jitter, so that
 * waiters neither spin nor wake in lockstep.
 *
 * @module
 */

/** First delay, in ms. */
export const BACKOFF_START_MS = 1;
/** Longest delay, in ms: bounds both hand-off latency and idle CPU. */
export const BACKOFF_MAX_MS = 25;

/** The delays of one wait. */
export class Backoff {
  #next = BACKOFF_START_MS;

  /** The next delay in ms: between half and all of the current step. */
  next(): number {
    const step = this.#next;
    this.#next = Math.min(step * 2, BACKOFF_MAX_MS);
    return step * (0.5 + Math.random() * 0.5);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` (used by `acquireSync` between polls). */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * Resolves after `ms`, or rejects with `signal.reason` as soon as the signal
 * aborts.
 */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
