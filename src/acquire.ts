/**
 * The four ways to take a lock (`acquire`, `acquireSync`, `tryAcquire`,
 * `withLock`): each makes one {@linkcode Acquisition} and hands it to the
 * wait that fits (docs/architecture.md, "Layers").
 *
 * @module
 */

import { Acquisition } from "./acquisition.ts";
import { LockError } from "./errors.ts";
import { heldHereAgainst } from "./held_here.ts";
import type { Lock } from "./types.ts";
import { deadlineOf, timeLeft } from "./pace.ts";
import { settle, wait, waitSync } from "./wait.ts";

/** `acquire`: waits, yielding to the event loop. */
export function acquireLock(path: unknown, options: unknown): Promise<Lock> {
  let acquisition: Acquisition;
  try {
    acquisition = new Acquisition(path, options);
  } catch (error) {
    return Promise.reject(error);
  }
  const { timeout, signal } = acquisition.options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  acquisition.mayYield = timeout > 0;
  const deadline = deadlineOf(timeout);
  const asked = acquisition.firstAnswer(deadline, signal);
  if (asked === undefined) return wait(acquisition, timeout, signal);
  return asked.then(() => wait(acquisition, timeLeft(deadline), signal));
}

/**
 * `acquireSync`: waits, blocking the thread. A signal cannot be aborted while
 * the thread is blocked, so only an aborted one is accepted (its reason is
 * thrown), and a wait for a lock this thread holds, which could never end
 * (or only by its timeout), fails at once.
 */
export function acquireLockSync(path: unknown, options: unknown): Lock {
  const acquisition = new Acquisition(path, options);
  const { signal, timeout, shared } = acquisition.options;
  if (signal !== undefined) {
    if (signal.aborted) throw signal.reason;
    throw new TypeError(
      "acquireSync cannot be cancelled by an AbortSignal: nothing can abort it while the thread is blocked; bound the wait with options.timeout instead",
    );
  }
  if (heldHereAgainst(acquisition.path, shared)) {
    throw new LockError({
      code: "EDEADLK",
      path: acquisition.path,
      detail:
        "this thread already holds this lock, and locks are not reentrant: a synchronous wait for it would wait for itself; release it first, or use tryAcquire",
    });
  }
  const deadline = deadlineOf(timeout);
  acquisition.firstAnswerSync(deadline);
  // Blocked in flock (no timeout), it waits in the kernel's own order.
  acquisition.mayYield = timeout > 0 && timeout !== Infinity;
  return waitSync(acquisition, timeLeft(deadline));
}

/** `tryAcquire`: one settled attempt, never waiting. */
export function tryAcquireLock(path: unknown, options: unknown): Lock | null {
  const acquisition = new Acquisition(path, options);
  acquisition.firstAnswerSync(undefined);
  return settle(acquisition, undefined) ?? null;
}

/** `withLock`: runs `fn` under the lock and releases it afterwards, also when `fn` throws. */
export async function withLockHeld<T>(
  path: unknown,
  fn: (lock: Lock) => T | Promise<T>,
  options: unknown,
): Promise<T> {
  if (typeof fn !== "function") throw new TypeError("withLock needs a function to run");
  const lock = await acquireLock(path, options);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
