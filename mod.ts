/**
 * Cross-process file locks for Deno, Bun and Node. The lock is a real kernel
 * lock (`flock(2)`) taken through the runtime's FFI (`Deno.dlopen`, `bun:ffi`,
 * koffi), so two processes never both hold it, whichever runtime they run in,
 * and it interoperates with `flock(1)`, Python's `fcntl.flock` and every other
 * `flock(2)` user on the same file. A lock dies with its process: no stale
 * lock files.
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

import { LockError, LockTimeoutError } from "./src/errors.ts";
import { lockOptions, lockPath } from "./src/options.ts";
import { kernelBinding, resolveBackend } from "./src/probe.ts";
import { attemptNow, type LockRequest, wait, waitSync } from "./src/engine.ts";
import { KernelLock } from "./src/lock.ts";
import type { BackendName, BackendRequest, Lock, LockOptions, ProbeResult } from "./src/types.ts";
import type { ValidOptions } from "./src/options.ts";
import type { Binding, EncodedPath } from "./ffi/types.ts";
import { isBackendRequest } from "./src/options.ts";

export { LockError, LockTimeoutError };
export type { LockErrorOptions } from "./src/errors.ts";
export type { BackendName, BackendRequest, Lock, LockOptions, ProbeResult };

// Repeated locks on one path skip re-encoding it.
let lastPath = "";
let lastBinding: Binding | undefined;
let lastEncoded: EncodedPath = "";

function encoded(binding: Binding, path: string): EncodedPath {
  if (path !== lastPath || binding !== lastBinding) {
    lastEncoded = binding.encodePath(path);
    lastPath = path;
    lastBinding = binding;
  }
  return lastEncoded;
}

function prepare(path: unknown, options: unknown): { request: LockRequest; valid: ValidOptions } {
  const absolute = lockPath(path);
  const valid = lockOptions(options);
  const binding = kernelBinding(valid.backend);
  return {
    request: {
      binding,
      path: absolute,
      encoded: encoded(binding, absolute),
      shared: valid.shared,
      mode: valid.mode,
    },
    valid,
  };
}

function held(request: LockRequest, valid: ValidOptions, fd: number): Lock {
  return new KernelLock(
    request.binding,
    request.path,
    request.encoded,
    fd,
    request.shared,
    valid.removeOnRelease,
  );
}

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
export async function acquire(path: string | URL, options?: LockOptions): Promise<Lock> {
  const { request, valid } = prepare(path, options);
  const fd = await wait(request, valid.timeout, valid.signal);
  return held(request, valid, fd);
}

/**
 * Takes the lock on `path`, blocking the thread between polls. An abort is
 * noticed between polls.
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
  const { request, valid } = prepare(path, options);
  return held(request, valid, waitSync(request, valid.timeout, valid.signal));
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
  const { request, valid } = prepare(path, options);
  const fd = attemptNow(request);
  return fd >= 0 ? held(request, valid, fd) : null;
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
export async function withLock<T>(
  path: string | URL,
  fn: (lock: Lock) => T | Promise<T>,
  options?: LockOptions,
): Promise<T> {
  if (typeof fn !== "function") throw new TypeError("withLock needs a function to run");
  const lock = await acquire(path, options);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

/**
 * Which backend a request resolves to in this process, and why. Synchronous,
 * and cheap after the first call. An explicit request that cannot be met
 * throws `LockError` with code `EUNSUPPORTED`.
 *
 * @example
 * ```ts
 * import { probe } from "@lockkit/filelock";
 *
 * const { backend, reason } = probe();
 * console.log(`${backend}: ${reason}`);
 * ```
 */
export function probe(options?: { backend?: BackendRequest }): ProbeResult {
  const backend = options?.backend;
  if (backend !== undefined && !isBackendRequest(backend)) {
    throw new TypeError(
      `backend must be one of auto, ffi, native, pidfile, got '${String(backend)}'`,
    );
  }
  return { ...resolveBackend(backend).result };
}
