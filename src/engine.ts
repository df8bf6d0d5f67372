/**
 * The state machine, written once for every kernel backend: one attempt
 * (open a fresh descriptor, flock non-blocking, verify identity), and the
 * waiting loops that every backend (the pidfile one too) runs its attempts in. It calls only the `Binding` interface.
 *
 * @module
 */

import type { Binding, EncodedPath } from "../ffi/types.ts";
import { KIND_DIRECTORY, KIND_FILE, KIND_SYMLINK, newIdentity, sameFile } from "../ffi/types.ts";
import { LockError, LockTimeoutError, NO_FLOCK_ERRNOS } from "./errors.ts";
import { Backoff, sleep, sleepSync } from "./backoff.ts";
import { describeHolders } from "./holder.ts";
import { kernelHolders } from "./inspect.ts";
import { unlinkIfOurs } from "./lock.ts";
import { MALFORMED_GRACE_MS } from "./pidfile.ts";

/** Everything one acquire needs, resolved once before the first attempt. */
export interface LockRequest {
  readonly binding: Binding;
  /** Absolute path. */
  readonly path: string;
  /** The path encoded for the binding, once per acquire. */
  readonly encoded: EncodedPath;
  readonly shared: boolean;
  readonly mode: number;
  /**
   * The backend was chosen automatically, so a filesystem without `flock`
   * (`ENOLCK`/`EOPNOTSUPP`) ends the attempt with `NO_KERNEL_LOCK` for the
   * pidfile backend to take over, instead of an error.
   */
  readonly fallback: boolean;
}

/**
 * Hooks for tests only: not exported from `mod.ts`. `verifyIdentity: false`
 * shows what the identity check guards against; `afterOpen` widens the window
 * between `open` and `flock` so that the race is reproducible; `flockError`
 * (an errno name) makes every `flock` fail as it does on a filesystem without
 * flock, which no test machine here has.
 */
export const testHooks: {
  verifyIdentity: boolean;
  afterOpen: (() => void) | undefined;
  flockError: string | undefined;
} = { verifyIdentity: true, afterOpen: undefined, flockError: undefined };

/** The attempt found the lock held by someone else. */
export const BUSY = -1;
/** We locked a file that is no longer the one at the path: try again at once. */
export const REPLACED = -2;
/**
 * The filesystem has no `flock` and the request may fall back: the pidfile
 * backend takes over. Nothing of the attempt is left behind.
 */
export const NO_KERNEL_LOCK = -3;

/**
 * How long replaced-file retries may go on after the deadline: a replacement
 * means another process made progress, so it is not "busy", but a caller with
 * a zero timeout must still get an answer.
 */
const REPLACED_GRACE_MS = 1000;

const ours = newIdentity();
const atPath = newIdentity();

function fail(request: LockRequest, errno: number, cause?: unknown): never {
  const code = request.binding.errnoName(errno);
  throw new LockError({ code, path: request.path, cause: cause ?? errno });
}

function openRetrying(request: LockRequest, flags: number, mode: number): number {
  const { binding } = request;
  for (;;) {
    const fd = binding.open(request.encoded, flags, mode);
    // The errno name is looked up only on failure: success is the hot path.
    if (fd >= 0 || fd !== -binding.errnoNumber("EINTR")) return fd;
  }
}

function flockRetrying(binding: Binding, fd: number, operation: number): number {
  for (;;) {
    const result = binding.flock(fd, operation);
    if (result === 0 || result !== -binding.errnoNumber("EINTR")) return result;
  }
}

/** Whether the latest `openDescriptor` created the file (with `O_EXCL`, so nobody else did). */
let created = false;
/** When it was about to create it (`performance.now()`), read only on that path. */
let createdAt = 0;

/**
 * How long after creating a lock file an attempt that could not lock it may
 * still remove it: well inside the grace that pidfile users give an empty
 * file, so that none of them can have reclaimed it and put their own record
 * at the path in the meantime.
 */
const REMOVE_CREATED_WITHIN_MS = MALFORMED_GRACE_MS / 4;

/**
 * Opens the file already at the path: read-write, or read-only where writing
 * is refused (`flock` works on either). A descriptor or `-errno`.
 */
function openExisting(request: LockRequest): number {
  const { binding } = request;
  const c = binding.constants;
  const fd = openRetrying(request, c.O_RDWR | c.O_CLOEXEC | c.O_NOFOLLOW, 0);
  if (fd >= 0) return fd;
  const name = binding.errnoName(-fd);
  if (name !== "EACCES" && name !== "EROFS" && name !== "EPERM") return fd;
  const readOnly = openRetrying(request, c.O_RDONLY | c.O_CLOEXEC | c.O_NOFOLLOW, 0);
  // Missing after all (Deno refuses a write open it has no permission for
  // before looking at the file): the write refusal is the error to report.
  return readOnly < 0 && binding.errnoName(-readOnly) === "ENOENT" ? fd : readOnly;
}

/**
 * Opens a fresh descriptor for one attempt, `REPLACED` when the file at the
 * path is being deleted (Windows: until its last handle closes), or throws
 * the path's error. A missing file is created with `O_EXCL`, so that
 * `created` tells for certain whether this attempt made it: an attempt that
 * ends without a lock must not leave behind a file it made (an empty file
 * would hold pidfile users off for their grace period). An existing file,
 * the usual case, still costs one `open`.
 */
function openDescriptor(request: LockRequest): number {
  const { binding } = request;
  const c = binding.constants;
  for (;;) {
    const fd = openExisting(request);
    if (fd >= 0) {
      created = false;
      return fd;
    }
    const name = binding.errnoName(-fd);
    if (name === "EDELETEPENDING") return REPLACED;
    if (name !== "ENOENT") fail(request, -fd);
    createdAt = performance.now();
    const made = openRetrying(
      request,
      c.O_RDWR | c.O_CREAT | c.O_EXCL | c.O_CLOEXEC | c.O_NOFOLLOW,
      request.mode,
    );
    if (made >= 0) {
      created = true;
      return made;
    }
    const madeName = binding.errnoName(-made);
    if (madeName === "EDELETEPENDING") return REPLACED;
    if (madeName !== "EEXIST") fail(request, -made); // EEXIST: someone else created it just now
  }
}

/**
 * Closes an attempt's descriptor after `flock` found no lock support. When the
 * pidfile backend takes over and this attempt created the file, the file is
 * removed too: made with `O_EXCL` a moment ago and never lockable, it is ours
 * alone, and left behind it would hold pidfile users off for their grace
 * period. Only while it is young enough that no pidfile user can have
 * reclaimed it and replaced it with their own.
 */
function abandonUnlockable(request: LockRequest, fd: number): void {
  if (
    created && request.fallback && performance.now() - createdAt < REMOVE_CREATED_WITHIN_MS
  ) {
    unlinkIfOurs(request.binding, request.encoded, fd);
  }
  request.binding.close(fd);
}

/**
 * One attempt: a descriptor that holds the lock, `BUSY`, `REPLACED` or
 * `NO_KERNEL_LOCK`. Throws `LockError` for anything the caller must act on.
 * Never leaks the descriptor, never writes to the file, and removes only a
 * file it created itself a moment ago and could not lock, when the pidfile
 * backend takes over.
 */
export function attempt(request: LockRequest, blocking = false): number {
  const { binding } = request;
  const c = binding.constants;
  const fd = openDescriptor(request);
  if (fd === REPLACED) return REPLACED;
  testHooks.afterOpen?.();
  const locked = testHooks.flockError === undefined
    ? flockRetrying(
      binding,
      fd,
      (request.shared ? c.LOCK_SH : c.LOCK_EX) | (blocking ? 0 : c.LOCK_NB),
    )
    : -binding.errnoNumber(testHooks.flockError);
  if (locked !== 0) {
    const name = binding.errnoName(-locked);
    if (name === "EWOULDBLOCK") {
      binding.close(fd);
      return BUSY;
    }
    if (NO_FLOCK_ERRNOS.has(name)) {
      abandonUnlockable(request, fd);
      if (request.fallback) return NO_KERNEL_LOCK;
      fail(request, -locked);
    }
    binding.close(fd);
    fail(request, -locked);
  }
  const statResult = binding.fstat(fd, ours);
  if (statResult !== 0) {
    binding.close(fd);
    fail(request, -statResult);
  }
  if (ours[4] === KIND_SYMLINK) {
    // Windows opens the link itself (FILE_FLAG_OPEN_REPARSE_POINT) where POSIX refuses it.
    binding.close(fd);
    fail(request, binding.errnoNumber("ELOOP"));
  }
  if (ours[4] !== KIND_FILE) {
    binding.close(fd);
    throw new LockError({
      code: ours[4] === KIND_DIRECTORY ? "EISDIR" : "EINVAL",
      path: request.path,
      detail: ours[4] === KIND_DIRECTORY ? undefined : "the lock path is not a regular file",
    });
  }
  if (!testHooks.verifyIdentity) return fd;
  const pathResult = binding.lstat(request.encoded, atPath);
  if (pathResult !== 0) {
    binding.close(fd);
    // Unlinked (or, on Windows, being deleted) between our open and our flock:
    // the lock we hold is on a ghost.
    const name = binding.errnoName(-pathResult);
    if (name === "ENOENT" || name === "EDELETEPENDING") return REPLACED;
    fail(request, -pathResult);
  }
  if (!sameFile(ours, atPath)) {
    binding.close(fd);
    if (atPath[4] === KIND_SYMLINK) fail(request, binding.errnoNumber("ELOOP"));
    return REPLACED;
  }
  return fd;
}

/**
 * Whether a kernel lock user holds the file at the path right now: a
 * non-blocking exclusive `flock` on a fresh descriptor, let go at once;
 * `false` where that cannot tell (no file, no `flock`). The pidfile backend
 * that took over from a kernel one asks this before it removes a file it
 * judged stale, so that a flock that failed for a moment here cannot make it
 * delete the file a kernel user is holding.
 */
export function heldByKernelUser(request: LockRequest): boolean {
  const { binding } = request;
  const c = binding.constants;
  const fd = openExisting(request);
  if (fd < 0) return false;
  const locked = flockRetrying(binding, fd, c.LOCK_EX | c.LOCK_NB);
  if (locked === 0) binding.flock(fd, c.LOCK_UN);
  binding.close(fd);
  return locked !== 0 && binding.errnoName(-locked) === "EWOULDBLOCK";
}

/**
 * Attempts until held or busy: a replaced file is retried at once. `deadline`
 * `undefined` means now. The clock is read only once a file was replaced.
 */
function attemptUntilSettled(request: LockRequest, deadline: number | undefined): number {
  const first = attempt(request);
  if (first !== REPLACED) return first;
  const now = performance.now();
  const replacedLimit = Math.max(deadline ?? now, now + REPLACED_GRACE_MS);
  for (;;) {
    const result = attempt(request);
    if (result !== REPLACED) return result;
    if (performance.now() > replacedLimit) return BUSY;
  }
}

/**
 * One settled kernel attempt within `deadline` (`undefined`: now, never
 * waiting): the descriptor, `NO_KERNEL_LOCK`, or `undefined` while busy.
 */
export function kernelAttempt(
  request: LockRequest,
  deadline: number | undefined,
): number | undefined {
  const fd = attemptUntilSettled(request, deadline);
  return fd === BUSY ? undefined : fd;
}

/** The timeout error of a kernel wait, naming the holders where /proc/locks shows them. */
export function kernelTimedOut(request: LockRequest, timeout: number): LockTimeoutError {
  const holders = kernelHolders(request.path) ?? [];
  return new LockTimeoutError(
    request.path,
    `timed out after ${timeout} ms waiting for the ${
      request.shared ? "shared" : "exclusive"
    } lock, ${describeHolders(holders, "held by another descriptor")}`,
    holders,
  );
}

/**
 * Waits in the kernel (a blocking `flock`) until the lock is ours (or
 * `NO_KERNEL_LOCK`): for a synchronous wait without timeout or signal, which
 * blocks the thread anyway.
 * The kernel hands the lock over the moment it is released, as C's blocking
 * `flock` does, instead of the next poll noticing it.
 */
export function waitBlocking(request: LockRequest): number {
  for (;;) {
    const result = attempt(request, true);
    if (result >= 0 || result === NO_KERNEL_LOCK) return result;
  }
}

/**
 * One settled attempt of any backend: what holds the lock, or `undefined`
 * while someone else does. `deadline` is on the `performance.now()` clock.
 */
export type SettledAttempt<T> = (deadline: number) => T | undefined;

function deadlineOf(timeout: number): number {
  return timeout === Infinity ? Infinity : performance.now() + timeout;
}

/** Waits for the lock, blocking the thread between polls. */
export function waitSync<T>(
  attemptOnce: SettledAttempt<T>,
  timeout: number,
  signal: AbortSignal | undefined,
  timedOut: () => Error,
): T {
  if (signal?.aborted) throw signal.reason;
  const deadline = deadlineOf(timeout);
  const backoff = new Backoff();
  for (;;) {
    const result = attemptOnce(deadline);
    if (result !== undefined) return result;
    const left = deadline - performance.now();
    if (left <= 0) throw timedOut();
    sleepSync(Math.min(backoff.next(), left));
    if (signal?.aborted) throw signal.reason;
  }
}

/** Waits for the lock, yielding to the event loop between polls. */
export async function wait<T>(
  attemptOnce: SettledAttempt<T>,
  timeout: number,
  signal: AbortSignal | undefined,
  timedOut: () => Error,
): Promise<T> {
  if (signal?.aborted) throw signal.reason;
  const deadline = deadlineOf(timeout);
  const backoff = new Backoff();
  for (;;) {
    const result = attemptOnce(deadline);
    if (result !== undefined) return result;
    const left = deadline - performance.now();
    if (left <= 0) throw timedOut();
    await sleep(Math.min(backoff.next(), left), signal);
  }
}
