/**
 * How long a waiter sleeps between attempts, and the deadline arithmetic:
 * the delays and clocks `src/wait.ts` decides with (docs/architecture.md,
 * "Waiting").
 *
 * @module
 */

import type { Woken } from "./kernel/wakeups.ts";

/** First delay, in ms. */
export const BACKOFF_START_MS = 1;
/** Longest delay between polls, in ms, where nothing wakes a waiter: bounds hand-off latency and idle CPU. */
export const BACKOFF_MAX_MS = 25;
/**
 * Longest delay where the kernel wakes waiters: only a lost wake-up waits
 * this long (a holder that unlocks without closing, one whose descriptor was
 * read-only such as flock(1)'s, one on another host).
 */
export const WOKEN_BACKOFF_MAX_MS = 250;

/**
 * How soon a woken waiter that found the lock still busy tries once more: a
 * release's close can reach inotify before its unlock does (the kernel's
 * `__fput` order, for a holder that closes without unlocking). Only once per
 * wake-up: a waiter that lost the race to another does not spin.
 */
export const QUICK_RETRY_MS = 1;

/** When a woken waiter tries next: once soon after a wake-up, else on the backoff. */
export class WokenPacer {
  readonly #backoff = new Backoff();
  #quick = false;
  #pollsSinceEvent = Infinity;

  /**
   * The next sleep, at most `max` ms (`Infinity`: no poll, only wake-ups),
   * and whether a wake-up may end it: the quick retry after a wake-up is a
   * timer only, so that a waiter behind a holder that takes the lock again
   * and again tries about once a millisecond, not on every release.
   */
  next(max: number, left: number): { ms: number; wakeable: boolean } {
    if (max === Infinity) return { ms: left, wakeable: true };
    const quick = this.#quick;
    this.#quick = false;
    return {
      ms: Math.min(quick ? QUICK_RETRY_MS : this.#backoff.next(max), left),
      wakeable: !quick,
    };
  }

  /** Notes how the last sleep ended. */
  woken(how: Woken): void {
    if (how === "event") {
      this.#quick = true;
      this.#pollsSinceEvent = 0;
    } else {
      this.#pollsSinceEvent++;
    }
  }

  /** Whether a lock taken now was handed over by a wake-up (and its one quick retry). */
  get byEvent(): boolean {
    return this.#pollsSinceEvent <= 1;
  }
}

/**
 * How long replaced-file retries may go on after the deadline: a replacement
 * means another process made progress, so it is not "busy", but a caller with
 * a zero timeout must still get an answer.
 */
export const REPLACED_GRACE_MS = 1000;

/**
 * How long the first `flock` on a filesystem that may hang (NFS, FUSE) is
 * given on its own thread, at least, counted from when the thread asks: the
 * caller's deadline, but never less than this, so that `tryAcquire` and a
 * zero timeout still give a live filesystem time to answer.
 */
export const FIRST_FLOCK_MIN_MS = 250;

/** How long to give a first `flock` that must be done by `deadline` (`undefined`: now). */
export function firstFlockLimit(deadline: number | undefined): number {
  const left = deadline === undefined ? 0 : deadline - performance.now();
  return Math.max(left, FIRST_FLOCK_MIN_MS);
}

/** The delays of one wait: exponential with jitter, so that waiters neither spin nor wake in lockstep. */
export class Backoff {
  #next = BACKOFF_START_MS;

  /** The next delay in ms, at most `max`: between half and all of the current step. */
  next(max: number = BACKOFF_MAX_MS): number {
    const step = Math.min(this.#next, max);
    this.#next = Math.min(step * 2, max);
    return step * (0.5 + Math.random() * 0.5);
  }
}

/** The `performance.now()` time at which a wait of `timeout` ms ends. */
export function deadlineOf(timeout: number): number {
  return timeout === Infinity ? Infinity : performance.now() + timeout;
}

/** The time left until `deadline`, as a timeout (`Infinity` stays `Infinity`). */
export function timeLeft(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
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
