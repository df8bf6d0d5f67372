/**
 * When to try again: the one place that decides it, for every backend. An
 * attempt that found the file replaced is retried at once; a busy lock is
 * polled with exponential backoff and jitter until the deadline; a synchronous
 * wait that nothing can interrupt waits in the kernel instead
 * (docs/architecture.md, "Waiting").
 *
 * @module
 */

import type { Attempt } from "./attempt.ts";

/** What the wait loops drive: one acquisition's attempts. */
export interface Attempter<T> {
  /**
   * One attempt. With `blocking` (only asked while {@linkcode canBlock}) it
   * waits in the kernel until the lock is free instead of answering busy.
   */
  attempt(blocking: boolean): Attempt<T>;
  /** Whether an attempt can wait in the kernel now (a kernel backend). */
  readonly canBlock: boolean;
  /** The error to throw when the deadline passes. */
  timedOut(): Error;
}

/** First delay, in ms. */
export const BACKOFF_START_MS = 1;
/** Longest delay, in ms: bounds both hand-off latency and idle CPU. */
export const BACKOFF_MAX_MS = 25;

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

  /** The next delay in ms: between half and all of the current step. */
  next(): number {
    const step = this.#next;
    this.#next = Math.min(step * 2, BACKOFF_MAX_MS);
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

/**
 * Attempts until the lock is held or busy: an attempt that found the file
 * replaced is retried at once, until `deadline` (`undefined`: now) plus
 * {@linkcode REPLACED_GRACE_MS}. The clock is read only once a file was
 * replaced. Returns what holds the lock, or `undefined` while it is busy.
 */
export function settle<T>(attempter: Attempter<T>, deadline: number | undefined): T | undefined {
  let result = attempter.attempt(false);
  if (result.outcome === "held") return result.value;
  if (result.outcome === "busy") return undefined;
  const now = performance.now();
  const limit = Math.max(deadline ?? now, now + REPLACED_GRACE_MS);
  for (;;) {
    result = attempter.attempt(false);
    if (result.outcome === "held") return result.value;
    if (result.outcome === "busy" || performance.now() > limit) return undefined;
  }
}

/**
 * Waits for the lock, blocking the thread (no signal can abort meanwhile).
 * Without a timeout nothing can interrupt the wait, so it happens in the
 * kernel (a blocking `flock`), which hands the lock over the moment it is
 * released, as C's blocking `flock` does; otherwise it sleeps between polls.
 */
export function waitSync<T>(attempter: Attempter<T>, timeout: number): T {
  if (timeout === Infinity) {
    // Until the lock is held, or the acquisition moves to a backend that polls.
    while (attempter.canBlock) {
      const result = attempter.attempt(true);
      if (result.outcome === "held") return result.value;
    }
  }
  const deadline = deadlineOf(timeout);
  const backoff = new Backoff();
  for (;;) {
    const value = settle(attempter, deadline);
    if (value !== undefined) return value;
    const left = deadline - performance.now();
    if (left <= 0) throw attempter.timedOut();
    sleepSync(Math.min(backoff.next(), left));
  }
}

/** Waits for the lock, yielding to the event loop between polls. */
export async function wait<T>(
  attempter: Attempter<T>,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal?.aborted) throw signal.reason;
  const deadline = deadlineOf(timeout);
  const backoff = new Backoff();
  for (;;) {
    const value = settle(attempter, deadline);
    if (value !== undefined) return value;
    const left = deadline - performance.now();
    if (left <= 0) throw attempter.timedOut();
    await sleep(Math.min(backoff.next(), left), signal);
  }
}
