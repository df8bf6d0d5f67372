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

import { LockError, LockTimeoutError } from "./src/errors.ts";
import { lockOptions, lockPath, type ValidOptions } from "./src/options.ts";
import { resolveBackend } from "./src/probe.ts";
import {
  heldByKernelUser,
  kernelAttempt,
  kernelTimedOut,
  type LockRequest,
  NO_KERNEL_LOCK,
  wait,
  waitBlocking,
  waitSync,
} from "./src/engine.ts";
import { KernelLock } from "./src/lock.ts";
import {
  attemptPidfile,
  PidfileLock,
  type PidfileRequest,
  pidfileTimedOut,
} from "./src/pidfile.ts";
import { inspectPath } from "./src/inspect.ts";
import type {
  BackendName,
  BackendRequest,
  Lock,
  LockHolder,
  LockOptions,
  LockStatus,
  ProbeResult,
} from "./src/types.ts";
import type { Binding, EncodedPath } from "./ffi/types.ts";
import { isBackendRequest } from "./src/options.ts";

export { LockError, LockTimeoutError };
export type { LockErrorOptions } from "./src/errors.ts";
export type { BackendName, BackendRequest, Lock, LockHolder, LockOptions, LockStatus, ProbeResult };

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

type Prepared =
  | { kernel: LockRequest; pidfile?: undefined; valid: ValidOptions }
  | { kernel?: undefined; pidfile: PidfileRequest; valid: ValidOptions };

/**
 * Paths whose filesystem refused `flock` in this process, with the backend
 * chosen automatically: they stay in pidfile mode, so that this process never
 * takes both kinds of lock on one path.
 */
const noKernelLockPaths = new Set<string>();

/** Whether `path` is in pidfile mode here because its filesystem refused `flock`. */
function fellBack(path: string, automatic: boolean): boolean {
  return automatic && noKernelLockPaths.has(path);
}

function prepare(path: unknown, options: unknown): Prepared {
  const absolute = lockPath(path);
  const valid = lockOptions(options);
  const { binding, automatic } = resolveBackend(valid.backend);
  if (binding === undefined) return { pidfile: pidfileRequest(absolute, valid, false), valid };
  const kernel: LockRequest = {
    binding,
    path: absolute,
    encoded: encoded(binding, absolute),
    shared: valid.shared,
    mode: valid.mode,
    fallback: automatic,
  };
  if (fellBack(absolute, automatic)) {
    return { pidfile: fallBack(kernel, valid), valid };
  }
  return { kernel, valid };
}

function pidfileRequest(path: string, valid: ValidOptions, noFlock: boolean): PidfileRequest {
  if (valid.shared) {
    throw new LockError({
      code: "EUNSUPPORTED",
      path,
      detail: noFlock
        ? "this filesystem does not support flock(2), and the pidfile backend used instead takes exclusive locks only"
        : "the pidfile backend takes exclusive locks only; a shared lock needs a kernel backend (ffi or native)",
    });
  }
  return {
    path,
    mode: valid.mode,
    staleMs: valid.staleMs,
    onCompromised: valid.onCompromised,
    lastHolder: undefined,
    lastReason: "",
  };
}

/**
 * The path's filesystem has no `flock`: pidfile from now on, never removing a
 * file that kernel users (who may share the path) hold.
 */
function fallBack(kernel: LockRequest, valid: ValidOptions): PidfileRequest {
  noKernelLockPaths.add(kernel.path);
  return {
    ...pidfileRequest(kernel.path, valid, true),
    heldByKernelUser: () => heldByKernelUser(kernel),
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
 * The attempts of one acquire: kernel ones, until the filesystem turns out to
 * have no `flock` (then pidfile ones, within the same deadline), or pidfile
 * ones from the start.
 */
class Attempts {
  #kernel: LockRequest | undefined;
  #pidfile: PidfileRequest | undefined;
  readonly #valid: ValidOptions;

  constructor({ kernel, pidfile, valid }: Prepared) {
    this.#kernel = kernel;
    this.#pidfile = pidfile;
    this.#valid = valid;
  }

  /**
   * One settled attempt within `deadline` (`undefined`: now): the lock, or
   * `undefined` while someone else holds it.
   */
  once(deadline: number | undefined): Lock | undefined {
    const kernel = this.#kernel;
    if (kernel !== undefined) {
      const fd = kernelAttempt(kernel, deadline);
      if (fd === undefined) return undefined;
      if (fd !== NO_KERNEL_LOCK) return held(kernel, this.#valid, fd);
      this.switchToPidfile(kernel);
    }
    const pidfile = this.#pidfile as PidfileRequest;
    const created = attemptPidfile(pidfile);
    return created === undefined ? undefined : new PidfileLock(pidfile, created);
  }

  /** Waits in the kernel; `undefined` when the filesystem has no `flock` (pidfile from now on). */
  blocking(kernel: LockRequest): Lock | undefined {
    const fd = waitBlocking(kernel);
    if (fd !== NO_KERNEL_LOCK) return held(kernel, this.#valid, fd);
    this.switchToPidfile(kernel);
    return undefined;
  }

  switchToPidfile(kernel: LockRequest): void {
    this.#pidfile = fallBack(kernel, this.#valid);
    this.#kernel = undefined;
  }

  timedOut(): LockTimeoutError {
    const timeout = this.#valid.timeout;
    return this.#kernel !== undefined
      ? kernelTimedOut(this.#kernel, timeout)
      : pidfileTimedOut(this.#pidfile as PidfileRequest, timeout);
  }
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
  const prepared = prepare(path, options);
  const { valid } = prepared;
  const attempts = new Attempts(prepared);
  return await wait(
    (deadline) => attempts.once(deadline),
    valid.timeout,
    valid.signal,
    () => attempts.timedOut(),
  );
}

/**
 * Takes the lock on `path`, blocking the thread: in the kernel (a blocking
 * `flock`, handed over the moment it is released) when there is neither a
 * timeout nor a signal, else between polls, where an abort is noticed.
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
  const prepared = prepare(path, options);
  const { kernel, valid } = prepared;
  const attempts = new Attempts(prepared);
  // Nothing can interrupt the wait: let the kernel do it, and hand over at once.
  if (kernel !== undefined && valid.timeout === Infinity && valid.signal === undefined) {
    const lock = attempts.blocking(kernel);
    if (lock !== undefined) return lock;
  }
  return waitSync(
    (deadline) => attempts.once(deadline),
    valid.timeout,
    valid.signal,
    () => attempts.timedOut(),
  );
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
  return new Attempts(prepare(path, options)).once(undefined) ?? null;
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
  const absolute = lockPath(path);
  const valid = lockOptions(options);
  const { binding, automatic } = resolveBackend(valid.backend);
  const pidfile = binding === undefined || fellBack(absolute, automatic);
  return inspectPath(absolute, pidfile, valid.staleMs);
}
