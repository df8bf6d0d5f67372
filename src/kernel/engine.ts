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
import { foreignOwnerError } from "./foreign_owner.ts";
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
   * Whether an attempt that created the lock file and then finds no `flock`
   * removes it again: when the request falls back to pidfile (pidfile users
   * never remove a file that holds no record, so it would stand in their way).
   */
  readonly removeCreatedOnFallback: boolean;
  /**
   * Lock a file another user owns in a sticky world-writable directory (who
   * could delete it and so split the lock); refused by default.
   */
  readonly allowForeignOwner: boolean;
  /** The lock file is to be removed on release: then it cannot be a directory. */
  readonly removeOnRelease: boolean;
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

/** The identity (`fstat`) of the file the latest `held` attempt locked; copy it at once. */
export function lockedIdentity(): Uint32Array {
  return ours;
}

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

/** `flock`, again after `EINTR`: 0, or `-errno`. */
export function flockRetrying(binding: Binding, fd: number, operation: number): number {
  for (;;) {
    const result = binding.flock(fd, operation);
    if (result === 0 || result !== -binding.errnoNumber("EINTR")) return result;
  }
}

/** The flags of every open: no inheritance, no link followed, never a wait (a fifo). */
function openFlags(binding: Binding): number {
  const c = binding.constants;
  return c.O_CLOEXEC | c.O_NOFOLLOW | c.O_NONBLOCK;
}

/**
 * Opens the file already at the path: read-write, or read-only where writing
 * is refused (`flock` works on either). A descriptor or `-errno`.
 */
function openExisting(request: KernelRequest, quiet = false): { fd: number; readOnly: boolean } {
  const { binding } = request;
  const c = binding.constants;
  if (quiet) {
    // A waiter's retry: closing a read-only descriptor wakes no other waiter.
    const fd = openRetrying(request, c.O_RDONLY | openFlags(binding), 0);
    if (fd >= 0 || binding.errnoName(-fd) === "ENOENT") return { fd, readOnly: true };
  }
  const fd = openRetrying(request, c.O_RDWR | openFlags(binding), 0);
  if (fd >= 0) return { fd, readOnly: false };
  const name = binding.errnoName(-fd);
  // A directory opens read-only (as flock(1) opens it), and locks like a file.
  if (name !== "EACCES" && name !== "EROFS" && name !== "EPERM" && name !== "EISDIR") {
    return { fd, readOnly: false };
  }
  const readOnly = openRetrying(request, c.O_RDONLY | openFlags(binding), 0);
  // Missing after all (Deno refuses a write open it has no permission for
  // before looking at the file): the write refusal is the error to report.
  if (readOnly < 0 && binding.errnoName(-readOnly) === "ENOENT") return { fd, readOnly: false };
  return { fd: readOnly, readOnly: true };
}

/** A fresh descriptor, whether it is read-only, and whether this attempt created its file. */
export interface Opened {
  readonly fd: number;
  readonly readOnly: boolean;
  readonly created: boolean;
}

/**
 * Opens a fresh descriptor for one attempt; `undefined` when the file at the
 * path is being deleted (Windows: until its last handle closes); throws the
 * path's error. A missing file is created with `O_EXCL`, so that the attempt
 * knows for certain whether it made the file. An existing file, the usual
 * case, still costs one `open`.
 */
export function openDescriptor(request: KernelRequest, quiet = false): Opened | undefined {
  const { binding } = request;
  const c = binding.constants;
  for (;;) {
    const existing = openExisting(request, quiet);
    const fd = existing.fd;
    if (fd >= 0) return { fd, readOnly: existing.readOnly, created: false };
    const name = binding.errnoName(-fd);
    // ESTALE: a network filesystem's handle for a file replaced by another client; open again.
    if (name === "EDELETEPENDING" || name === "ESTALE") return undefined;
    if (name === "EISDIR") {
      // Only where even a read-only open of a directory fails: Windows locks files only.
      throw new LockError({
        code: "EISDIR",
        path: request.path,
        cause: -fd,
        detail: "the lock path is a directory, and this system locks only files",
      });
    }
    if (name !== "ENOENT") throw failure(request, -fd);
    const made = openRetrying(
      request,
      c.O_RDWR | c.O_CREAT | c.O_EXCL | openFlags(binding),
      request.mode,
    );
    if (made >= 0) return { fd: made, readOnly: false, created: true };
    const madeName = binding.errnoName(-made);
    if (madeName === "EDELETEPENDING" || madeName === "ESTALE") return undefined;
    // EEXIST: someone else created it just now; open theirs.
    if (madeName !== "EEXIST") throw failure(request, -made);
  }
}

/**
 * Closes an attempt's descriptor after `flock` found no lock support, and
 * removes the file if this attempt created it and the request falls back:
 * made with `O_EXCL`, never lockable, and still at the path (checked against
 * our descriptor, which keeps its inode from being reused), it is ours alone.
 */
export function abandonUnlockable(request: KernelRequest, opened: Opened): void {
  if (opened.created && request.removeCreatedOnFallback) {
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
export function attemptKernel(
  request: KernelRequest,
  blocking: boolean,
  quiet = false,
  onBusy?: (fd: number) => void,
): Attempt<number> {
  const { binding } = request;
  const c = binding.constants;
  const opened = openDescriptor(request, quiet);
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
      onBusy?.(fd);
      binding.close(fd);
      return BUSY;
    }
    if (name === "ESTALE") {
      binding.close(fd);
      return REPLACED;
    }
    if (FLOCK_UNSUPPORTED.has(name)) {
      abandonUnlockable(request, opened);
      return { outcome: "unsupported", error: failure(request, -locked) };
    }
    binding.close(fd);
    // A filesystem that locks only writable descriptors (NFS): retry as a holder would open.
    if (name === "EBADF" && quiet) return attemptKernel(request, blocking, false, onBusy);
    if (name === "EBADF" && opened.readOnly) {
      throw new LockError({
        code: "EBADF",
        path: request.path,
        cause: -locked,
        detail:
          "this filesystem refuses flock(2) on a file opened read-only (NFS emulates flock with fcntl locks, which need write access); make the lock file writable for this user",
      });
    }
    throw failure(request, -locked);
  }
  const statResult = binding.fstat(fd, ours);
  if (statResult !== 0) {
    binding.close(fd);
    if (binding.errnoName(-statResult) === "ESTALE") return REPLACED;
    throw failure(request, -statResult);
  }
  // Windows opens a symlink itself (FILE_FLAG_OPEN_REPARSE_POINT) where POSIX refuses it.
  const kind = kindOf(ours);
  const refusal = kind === FileKind.DIRECTORY && request.removeOnRelease
    ? new LockError({
      code: "EISDIR",
      path: request.path,
      detail:
        "the lock path is a directory, which removeOnRelease cannot remove: lock it without removeOnRelease",
    })
    : fileKindError(kind, request.path, true) ??
      (opened.created ? undefined : foreignOwnerError(request, ours));
  if (refusal !== undefined) {
    binding.close(fd);
    throw refusal;
  }
  if (!testHooks.verifyIdentity) return held(fd);
  const pathResult = binding.lstat(request.encoded, atPath);
  if (pathResult !== 0) {
    binding.close(fd);
    // Unlinked (or, on Windows, being deleted) between our open and our flock:
    // the lock we hold is on a ghost.
    const name = binding.errnoName(-pathResult);
    if (name === "ENOENT" || name === "EDELETEPENDING" || name === "ESTALE") return REPLACED;
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
 * A descriptor open for writing on the file a quiet attempt locked, whose
 * close at release tells waiters (inotify's `IN_CLOSE_WRITE`) that the lock
 * was let go; `-1` where the file cannot be opened for writing.
 */
export function openAnnouncer(request: KernelRequest): number {
  const c = request.binding.constants;
  const fd = openRetrying(request, c.O_RDWR | openFlags(request.binding), 0);
  return fd >= 0 ? fd : -1;
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
  const { fd } = openExisting(request);
  if (fd < 0) return false;
  const locked = flockRetrying(binding, fd, c.LOCK_EX | c.LOCK_NB);
  if (locked === 0) binding.flock(fd, c.LOCK_UN);
  binding.close(fd);
  return locked !== 0 && binding.errnoName(-locked) === "EWOULDBLOCK";
}
