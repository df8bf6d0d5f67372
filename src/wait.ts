/**
 * When to try again: the one place that decides it, for every backend. An
 * attempt that found the file replaced is retried at once; a busy lock is
 * waited for until the kernel says its file was let go (Linux, FFI), with a
 * fallback poll, or else polled with exponential backoff and jitter until the
 * deadline; a synchronous wait that nothing can interrupt waits in `flock`
 * itself (docs/architecture.md, "Waiting").
 *
 * @module
 */

import type { EncodedPath } from "../ffi/types.ts";
import {
  Backoff,
  deadlineOf,
  REPLACED_GRACE_MS,
  sleep,
  sleepSync,
  WOKEN_BACKOFF_MAX_MS,
  WokenPacer,
} from "./pace.ts";
import type { Attempt } from "./attempt.ts";
import { YIELD_MS } from "./kernel/fairness.ts";
import { asyncWakeupsAvailable, enterQueue, syncWatch, waitersFor } from "./kernel/wakeups.ts";

/** The lock file whose releases can wake a waiter. */
export interface WakeupFile {
  readonly path: string;
  readonly encoded: EncodedPath;
}

/** What the wait loops drive: one acquisition's attempts. */
export interface Attempter<T> {
  /**
   * One attempt. With `blocking` (only asked while {@linkcode canBlock}) it
   * waits in the kernel until the lock is free instead of answering busy.
   * A `quiet` attempt (a waiter's retry) opens the file so that closing it
   * wakes no other waiter; only a holder's release does.
   */
  attempt(blocking: boolean, quiet?: boolean): Attempt<T>;
  /** Whether an attempt can wait in the kernel now (a kernel backend). */
  readonly canBlock: boolean;
  /** The lock's path, where there is one: this process's waiters for it go first. */
  readonly path?: string;
  /**
   * Set by the wait loops around a wait's first attempt (the fast path) when
   * there is time left to wait: only then may an attempt give a lock it just
   * took back to another process's waiter (`src/kernel/fairness.ts`).
   */
  fastPath?: boolean;
  /** The lock file whose releases the kernel can report, where it can (else polling). */
  readonly wakeupFile?: WakeupFile | undefined;
  /**
   * Whether the last attempt gave the lock back to other processes' waiters
   * (`src/kernel/fairness.ts`): the wait then lets them go first. Reading it
   * clears it.
   */
  consumeYield?(): boolean;
  /** The error to throw when the deadline passes. */
  timedOut(): Error;
}

/**
 * For tests only (not exported from `mod.ts`): how async waits that the
 * kernel can wake ended, and the fallback poll's bound (`Infinity`: no poll
 * at all, only wake-ups, to show what the poll guards against).
 */
export const waitTestHooks: {
  heldAfterEvent: number;
  heldAfterPoll: number;
  fallbackPollMs: number;
} = { heldAfterEvent: 0, heldAfterPoll: 0, fallbackPollMs: WOKEN_BACKOFF_MAX_MS };

/**
 * Attempts until the lock is held or busy: an attempt that found the file
 * replaced is retried at once, until `deadline` (`undefined`: now) plus
 * {@linkcode REPLACED_GRACE_MS}. The clock is read only once a file was
 * replaced. Returns what holds the lock, or `undefined` while it is busy.
 */
export function settle<T>(
  attempter: Attempter<T>,
  deadline: number | undefined,
  quiet = false,
): T | undefined {
  let result = attempter.attempt(false, quiet);
  if (result.outcome === "held") return result.value;
  if (result.outcome === "busy") return undefined;
  const now = performance.now();
  const limit = Math.max(deadline ?? now, now + REPLACED_GRACE_MS);
  for (;;) {
    result = attempter.attempt(false, quiet);
    if (result.outcome === "held") return result.value;
    if (result.outcome === "busy" || performance.now() > limit) return undefined;
  }
}

/**
 * A wait's first attempt (and its replaced-file retries): the only one that
 * may give the lock back to another process's waiter, and only when there is
 * time to wait for it. Returns the lock, or `undefined` while it is busy;
 * `yielded` tells whether it was given back.
 */
function firstAttempt<T>(
  attempter: Attempter<T>,
  deadline: number,
): { value: T | undefined; yielded: boolean } {
  attempter.fastPath = deadline - performance.now() >= 2 * YIELD_MS;
  try {
    const value = settle(attempter, deadline);
    return { value, yielded: value === undefined && (attempter.consumeYield?.() ?? false) };
  } finally {
    attempter.fastPath = false;
  }
}

/**
 * Waits for the lock, blocking the thread (no signal can abort meanwhile).
 * Without a timeout nothing can interrupt the wait, so it happens in the
 * kernel (a blocking `flock`), which hands the lock over the moment it is
 * released, as C's blocking `flock` does. With one, the thread sleeps in
 * `poll` on a watch of the lock file until a release or the next poll.
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
  const first = firstAttempt(attempter, deadline);
  if (first.value !== undefined) return first.value;
  const file = attempter.wakeupFile;
  const watch = file === undefined ? undefined : syncWatch(file.encoded);
  const backoff = new Backoff();
  try {
    // Gave the lock back: the waiters it was given to go first (a timer: our own close
    // must not end it).
    if (first.yielded) sleepSync(Math.min(YIELD_MS, deadline - performance.now()));
    const pacer = new WokenPacer();
    for (;;) {
      const watched = watch?.arm() === "watched";
      const value = settle(attempter, deadline, watched);
      if (value !== undefined) return value;
      const left = deadline - performance.now();
      if (left <= 0) throw attempter.timedOut();
      if (!watched) {
        sleepSync(Math.min(backoff.next(), left));
        continue;
      }
      pacer.woken(watch!.sleep(pacer.next(waitTestHooks.fallbackPollMs, left).ms));
    }
  } finally {
    watch?.end();
  }
}

/**
 * Waits for the lock, yielding to the event loop. Where the kernel can wake
 * waiters, this process's waiters for one lock file queue in order and only
 * the head tries again, when a holder lets go (or at the fallback poll); a
 * newcomer goes behind them. Elsewhere it polls.
 */
export async function wait<T>(
  attempter: Attempter<T>,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal?.aborted) throw signal.reason;
  const deadline = deadlineOf(timeout);
  // The fast path (no watch, no library of wake-ups loaded), unless this process's waiters
  // for the file are ahead of it.
  let yielded = false;
  if (!waitersFor(attempter.path)) {
    const first = firstAttempt(attempter, deadline);
    if (first.value !== undefined) return first.value;
    if (deadline <= performance.now()) throw attempter.timedOut();
    yielded = first.yielded;
  }
  // Gave the lock back: the waiters it was given to go first (a timer: our own close
  // must not end it).
  const yieldPause = () => sleep(Math.min(YIELD_MS, deadline - performance.now()), signal);
  const file = attempter.wakeupFile;
  if (file === undefined || !asyncWakeupsAvailable()) {
    if (yielded) await yieldPause();
    return await poll(attempter, deadline, signal);
  }
  const place = await enterQueue(
    file.path,
    file.encoded,
    deadline,
    signal,
    () => attempter.timedOut(),
  );
  try {
    signal?.throwIfAborted();
    if (yielded) await yieldPause();
    const pacer = new WokenPacer();
    const backoff = new Backoff();
    for (;;) {
      // Watch before trying: a release after the attempt cannot go unseen.
      const watched = attempter.wakeupFile !== undefined && place.arm() === "watched";
      const value = settle(attempter, deadline, watched);
      if (value !== undefined) {
        if (pacer.byEvent) waitTestHooks.heldAfterEvent++;
        else waitTestHooks.heldAfterPoll++;
        return value;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw attempter.timedOut();
      if (!watched) {
        await place.sleep(Math.min(backoff.next(), left), signal);
        continue;
      }
      const { ms, wakeable } = pacer.next(waitTestHooks.fallbackPollMs, left);
      pacer.woken(await place.sleep(ms, signal, wakeable));
    }
  } finally {
    place.leave();
  }
}

/** Waits for the lock by polling: where nothing wakes a waiter. */
async function poll<T>(
  attempter: Attempter<T>,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<T> {
  const backoff = new Backoff();
  for (;;) {
    const value = settle(attempter, deadline);
    if (value !== undefined) return value;
    const left = deadline - performance.now();
    if (left <= 0) throw attempter.timedOut();
    await sleep(Math.min(backoff.next(), left), signal);
  }
}
