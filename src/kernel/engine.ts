/**
 * One attempt at a kernel lock, written once for every kernel backend: open a
 * fresh descriptor, `flock` it, and verify that the file locked is still the
 * file at the path (docs/architecture.md, "Invariants"). It calls only the
 * {@linkcode Binding} interface and answers with an {@linkcode Attempt}; when
 * to try again is decided by `src/wait.ts`, and what to do on a filesystem
 * without `flock` by `src/acquisition.ts`.
 *
 * @module
 */

import type { Binding, EncodedPath } from "../../ffi/types.ts";
import { FileKind, kindOf, newIdentity, sameFile } from "../../ffi/types.ts";
import { type Attempt, BUSY, held, REPLACED } from "../attempt.ts";
import { fileKindError, FLOCK_UNSUPPORTED, LockError } from "../errors.ts";
import { unlinkIfOurs } from "./lock.ts";

/** Everything one kernel acquire needs, resolved once before the first attempt. */
export interface KernelRequest {
  readonly binding: Binding;
  /** Absolute path. */
  readonly path: string;
  /** The path encoded for the binding, once per acquire. */
  readonly encoded: EncodedPath;
  readonly shared: boolean;
  readonly mode: number;
  /**
   * How long after creating the lock file an attempt that finds no `flock`
   * may still remove it, in ms; 0: never. Only a request that falls back to
   * pidfile removes it (an empty file would hold pidfile users off for their
   * grace period), and only while no pidfile user can have reclaimed it.
   */
  readonly removeCreatedWithinMs: number;
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

const ours = newIdentity();
const atPath = newIdentity();

function failure(request: KernelRequest, errno: number): LockError {
  return new LockError({
    code: request.binding.errnoName(errno),
    path: request.path,
    cause: errno,
  });
}

function openRetrying(request: KernelRequest, flags: number, mode: number): number {
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

/**
 * Opens the file already at the path: read-write, or read-only where writing
 * is refused (`flock` works on either). A descriptor or `-errno`.
 */
function openExisting(request: KernelRequest): number {
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

/** A fresh descriptor, and when this attempt created its file (`undefined`: it did not). */
interface Opened {
  readonly fd: number;
  readonly createdAt: number | undefined;
}

/**
 * Opens a fresh descriptor for one attempt; `undefined` when the file at the
 * path is being deleted (Windows: until its last handle closes); throws the
 * path's error. A missing file is created with `O_EXCL`, so that the attempt
 * knows for certain whether it made the file. An existing file, the usual
 * case, still costs one `open`.
 */
function openDescriptor(request: KernelRequest): Opened | undefined {
  const { binding } = request;
  const c = binding.constants;
  for (;;) {
    const fd = openExisting(request);
    if (fd >= 0) return { fd, createdAt: undefined };
    const name = binding.errnoName(-fd);
    if (name === "EDELETEPENDING") return undefined;
    if (name !== "ENOENT") throw failure(request, -fd);
    const createdAt = performance.now();
    const made = openRetrying(
      request,
      c.O_RDWR | c.O_CREAT | c.O_EXCL | c.O_CLOEXEC | c.O_NOFOLLOW,
      request.mode,
    );
    if (made >= 0) return { fd: made, createdAt };
    const madeName = binding.errnoName(-made);
    if (madeName === "EDELETEPENDING") return undefined;
    // EEXIST: someone else created it just now; open theirs.
    if (madeName !== "EEXIST") throw failure(request, -made);
  }
}

/**
 * Closes an attempt's descriptor after `flock` found no lock support, and
 * removes the file if this attempt created it less than
 * `removeCreatedWithinMs` ago: made with `O_EXCL` a moment ago and never
 * lockable, it is ours alone.
 */
function abandonUnlockable(request: KernelRequest, opened: Opened): void {
  if (
    opened.createdAt !== undefined &&
    performance.now() - opened.createdAt < request.removeCreatedWithinMs
  ) {
    unlinkIfOurs(request.binding, request.encoded, opened.fd);
  }
  request.binding.close(opened.fd);
}

/**
 * One attempt: `held` with the descriptor, `busy`, `replaced` (the file was
 * unlinked or replaced between our `open` and `flock`), or `unsupported`
 * (no `flock` on this filesystem). With `blocking`, `flock` waits in the
 * kernel. Throws `LockError` for anything the caller must act on. Never
 * leaks the descriptor and never writes to the file.
 */
export function attemptKernel(request: KernelRequest, blocking: boolean): Attempt<number> {
  const { binding } = request;
  const c = binding.constants;
  const opened = openDescriptor(request);
  if (opened === undefined) return REPLACED;
  const fd = opened.fd;
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
    if (FLOCK_UNSUPPORTED.has(name)) {
      abandonUnlockable(request, opened);
      return { outcome: "unsupported", error: failure(request, -locked) };
    }
    binding.close(fd);
    throw failure(request, -locked);
  }
  const statResult = binding.fstat(fd, ours);
  if (statResult !== 0) {
    binding.close(fd);
    throw failure(request, -statResult);
  }
  // Windows opens a symlink itself (FILE_FLAG_OPEN_REPARSE_POINT) where POSIX refuses it.
  const wrongKind = fileKindError(kindOf(ours), request.path);
  if (wrongKind !== undefined) {
    binding.close(fd);
    throw wrongKind;
  }
  if (!testHooks.verifyIdentity) return held(fd);
  const pathResult = binding.lstat(request.encoded, atPath);
  if (pathResult !== 0) {
    binding.close(fd);
    // Unlinked (or, on Windows, being deleted) between our open and our flock:
    // the lock we hold is on a ghost.
    const name = binding.errnoName(-pathResult);
    if (name === "ENOENT" || name === "EDELETEPENDING") return REPLACED;
    throw failure(request, -pathResult);
  }
  if (!sameFile(ours, atPath)) {
    binding.close(fd);
    if (kindOf(atPath) === FileKind.SYMLINK) throw failure(request, binding.errnoNumber("ELOOP"));
    return REPLACED;
  }
  return held(fd);
}

/**
 * Whether a kernel lock user holds the file at the path right now: a
 * non-blocking exclusive `flock` on a fresh descriptor, let go at once;
 * `false` where that cannot tell (no file, no `flock`). A pidfile backend that
 * took over from a kernel one asks this before it removes a file it judged
 * stale, so that a `flock` that failed for a moment cannot make it delete the
 * file a kernel user is holding.
 */
export function heldByKernelUser(request: KernelRequest): boolean {
  const { binding } = request;
  const c = binding.constants;
  const fd = openExisting(request);
  if (fd < 0) return false;
  const locked = flockRetrying(binding, fd, c.LOCK_EX | c.LOCK_NB);
  if (locked === 0) binding.flock(fd, c.LOCK_UN);
  binding.close(fd);
  return locked !== 0 && binding.errnoName(-locked) === "EWOULDBLOCK";
}
