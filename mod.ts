/**
 * Cross-process file locks for Deno, Bun and Node. The lock is a real kernel
 * lock (`flock(2)`) taken through the runtime's FFI (`Deno.dlopen`, `bun:ffi`,
 * koffi), so two processes never both hold it, whichever runtime they run in,
 * and it interoperates with `flock(1)`, Python's `fcntl.flock` and every other
 * `flock(2)` user on the same file. A lock dies with its process: no stale
 * lock files. Where no kernel lock exists (or when asked for), the `pidfile`
 * backend takes over: a lock file naming its holder, reclaimed safely once
 * the holder is gone; `probe()` says which backend is used and why.
 *
 * `path` names the lock file itself; it is created if missing and kept on
 * release unless `removeOnRelease` is set.
 *
 * @example
 * ```ts
 * import { withLock } from "@lockkit/filelock";
 *
 * await withLock("./app.lock", async () => {
 *   // only one process at a time runs this
 * });
 * ```
 *
 * @module
 */

import { acquireLock, acquireLockSync, tryAcquireLock, withLockHeld } from "./src/acquire.ts";
import { LockError, LockTimeoutError } from "./src/errors.ts";
import { inspectLock } from "./src/inspect.ts";
import { probeBackend } from "./src/probe.ts";
import { probePath } from "./src/probe_path.ts";
import type {
  BackendName,
  BackendRequest,
  Lock,
  LockHolder,
  LockOptions,
  LockStatus,
  ProbeResult,
} from "./src/types.ts";

export { LockError, LockTimeoutError };
export type { LockErrorOptions } from "./src/errors.ts";
export type { BackendName, BackendRequest, Lock, LockHolder, LockOptions, LockStatus, ProbeResult };

/**
 * Takes the lock on `path`, waiting (with backoff) until it is free, the
 * timeout passes (`LockTimeoutError`) or the signal aborts (rejects with
 * `signal.reason`).
 *
 * @example
 * ```ts
 * import { acquire } from "@lockkit/filelock";
 *
 * const lock = await acquire("./data.lock", { timeout: 5_000 });
 * try {
 *   // exclusive access
 * } finally {
 *   await lock.release();
 * }
 * ```
 */
export function acquire(path: string | URL, options?: LockOptions): Promise<Lock> {
  return acquireLock(path, options);
}

/**
 * Takes the lock on `path`, blocking the thread until it is free or the
 * timeout passes (`LockTimeoutError`). Without a timeout a kernel backend
 * waits in the kernel (a blocking `flock`, handed over the moment it is
 * released); with one, the thread sleeps between polls.
 *
 * Nothing can abort a blocked thread, so `signal` cannot cancel this wait: an
 * already-aborted signal throws its reason at once, and any other signal is
 * refused with a `TypeError` (bound the wait with `timeout` instead). Locks
 * are not reentrant: a lock this thread already holds on the same file, by
 * whatever path, fails at once with `LockError` code `EDEADLK` instead of
 * waiting for itself.
 *
 * @example
 * ```ts
 * import { acquireSync } from "@lockkit/filelock";
 *
 * using lock = acquireSync("./data.lock", { timeout: 1_000 });
 * // exclusive access until the end of the block
 * ```
 */
export function acquireSync(path: string | URL, options?: LockOptions): Lock {
  return acquireLockSync(path, options);
}

/**
 * One attempt that never waits: the lock, or `null` when someone else holds
 * it. `timeout` and `signal` are ignored.
 *
 * @example
 * ```ts
 * import { tryAcquire } from "@lockkit/filelock";
 *
 * const lock = tryAcquire("./cron.lock");
 * if (lock === null) {
 *   console.log("another run is in progress");
 * } else {
 *   lock.releaseSync();
 * }
 * ```
 */
export function tryAcquire(path: string | URL, options?: LockOptions): Lock | null {
  return tryAcquireLock(path, options);
}

/**
 * Runs `fn` while holding the lock and releases it afterwards, also when `fn`
 * throws.
 *
 * @example
 * ```ts
 * import { withLock } from "@lockkit/filelock";
 *
 * const total = await withLock("./counter.lock", () => 1 + 1);
 * ```
 */
export function withLock<T>(
  path: string | URL,
  fn: (lock: Lock) => T | Promise<T>,
  options?: LockOptions,
): Promise<T> {
  return withLockHeld(path, fn, options);
}

/**
 * Which backend a request resolves to in this process, and why. Synchronous,
 * and cheap after the first call. An explicit request that cannot be met
 * throws `LockError` with code `EUNSUPPORTED`. Given a lock path, it also
 * reports that path's filesystem (`fsType`, `network`) and what it means
 * for the lock.
 *
 * @example
 * ```ts
 * import { probe } from "@lockkit/filelock";
 *
 * const { backend, reason } = probe();
 * console.log(`${backend}: ${reason}`);
 * const { fsType, network } = probe("./cron.lock");
 * if (network) console.warn(`cron.lock is on ${fsType}, shared with other hosts`);
 * ```
 */
export function probe(options?: { backend?: BackendRequest }): ProbeResult;
/**
 * Which backend a lock on `path` uses in this process, and the filesystem it
 * is on (`fsType`, `network`), with what that means in `reason`.
 *
 * @example
 * ```ts
 * import { probe } from "@lockkit/filelock";
 *
 * const { fsType, network } = probe("./cron.lock");
 * console.log(`${fsType}${network ? " (network)" : ""}`);
 * ```
 */
export function probe(path: string | URL, options?: { backend?: BackendRequest }): ProbeResult;
export function probe(
  pathOrOptions?: string | URL | { backend?: BackendRequest },
  options?: { backend?: BackendRequest },
): ProbeResult {
  if (typeof pathOrOptions === "string" || pathOrOptions instanceof URL) {
    return probePath(pathOrOptions, options);
  }
  return probeBackend(pathOrOptions);
}

/**
 * Who holds the lock on `path`, found without taking it: a pidfile record is
 * read and judged (running, or stale); a kernel lock is looked up in Linux's
 * `/proc/locks` (elsewhere its state is `"unknown"`). `backend` says which
 * kind of lock the path is used with (default as `acquire` would choose);
 * `staleMs` judges records from other hosts as `acquire` would.
 *
 * @example
 * ```ts
 * import { inspect } from "@lockkit/filelock";
 *
 * const status = inspect("./cron.lock");
 * if (status.state === "held") console.log(status.detail);
 * ```
 */
export function inspect(
  path: string | URL,
  options?: { backend?: BackendRequest; staleMs?: number },
): LockStatus {
  return inspectLock(path, options);
}
