/**
 * The error classes of the public API.
 *
 * @module
 */

import { FileKind } from "../ffi/types.ts";
import type { LockHolder } from "./types.ts";

/** The errno names with which a filesystem without `flock(2)` refuses it. */
export const FLOCK_UNSUPPORTED: ReadonlySet<string> = new Set(["ENOLCK", "EOPNOTSUPP", "ENOTSUP"]);

const NO_FLOCK =
  'this filesystem does not support flock(2) locks; use the pidfile backend (backend: "pidfile"), which the automatic choice falls back to';

/** What a `LockError` code means, in words a user can act on. */
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  EINVAL: "invalid lock path",
  ENOENT: "the directory of the lock file does not exist",
  EACCES: "permission denied opening the lock file",
  EPERM: "operation not permitted on the lock file",
  EISDIR: "the lock path is a directory",
  ENOTDIR: "a component of the lock path is not a directory",
  ELOOP: "the lock path is a symbolic link (lock files are never followed through links)",
  ENAMETOOLONG: "the lock path is too long",
  EROFS: "the lock file is on a read-only filesystem and does not exist",
  ...Object.fromEntries([...FLOCK_UNSUPPORTED].map((code) => [code, NO_FLOCK])),
  EMFILE: "too many open files in this process",
  ENFILE: "too many open files in the system",
  ENOSPC: "no space left to create the lock file",
  EUNSUPPORTED: "the requested backend is not available",
  ETIMEDOUT: "timed out waiting for the lock",
  ECOMPROMISED: "the lock was taken from us while we held it",
};

/** Options of the {@linkcode LockError} constructor. */
export interface LockErrorOptions {
  /** An errno name such as `ENOENT`, or `EUNSUPPORTED`. */
  code: string;
  /** The lock file's absolute path, or the path as given when it is not usable. */
  path: string;
  /** The underlying error or errno number, where there is one. */
  cause?: unknown;
  /** Replaces the standard description of the code. */
  detail?: string;
  /** Who holds the lock, where known (timeouts, compromised locks). */
  holders?: readonly LockHolder[];
}

/**
 * Any failure to take or release a lock. `code` is an errno name (`ENOENT`,
 * `EACCES`, `EISDIR`, `ELOOP`, `EINVAL`, `ENOLCK`, ...) or `EUNSUPPORTED`; `ECOMPROMISED` reports a pidfile lock taken from
 * its holder, `ETIMEDOUT` a timeout. `holders` names who holds the lock where
 * that is known.
 *
 * @example
 * ```ts
 * import { acquire, LockError } from "./mod.ts";
 * try {
 *   await acquire("/no/such/dir/app.lock");
 * } catch (error) {
 *   if (error instanceof LockError) console.log(error.code); // "ENOENT"
 * }
 * ```
 */
export class LockError extends Error {
  /** An errno name, `EUNSUPPORTED` or `ETIMEDOUT`. */
  readonly code: string;
  /** The lock file the error is about. */
  readonly path: string;
  /** Who holds the lock, where known; empty otherwise. */
  readonly holders: readonly LockHolder[];

  /** Creates a lock error; the message is built from the code and path. */
  constructor(options: LockErrorOptions) {
    const detail = options.detail ?? DESCRIPTIONS[options.code] ?? "lock operation failed";
    const where = options.path === "" ? "" : `: '${options.path}'`;
    super(`${options.code}: ${detail}${where}`, { cause: options.cause });
    this.name = "LockError";
    this.code = options.code;
    this.path = options.path;
    this.holders = options.holders ?? [];
  }
}

/**
 * The lock was not free before the timeout. Its message says who holds the
 * lock where that is known.
 *
 * @example
 * ```ts
 * import { acquire, LockTimeoutError } from "./mod.ts";
 * try {
 *   await acquire("./app.lock", { timeout: 100 });
 * } catch (error) {
 *   if (error instanceof LockTimeoutError) console.log(error.message);
 * }
 * ```
 */
export class LockTimeoutError extends LockError {
  /** Creates a timeout error for `path`; `detail` replaces the standard description. */
  constructor(path: string, detail?: string, holders?: readonly LockHolder[]) {
    super({ code: "ETIMEDOUT", path, detail, holders });
    this.name = "LockTimeoutError";
  }
}

/**
 * The error for a lock path that is not a regular file (a directory, unless
 * `directoryOk`; a symlink opened as itself; a fifo or device), or
 * `undefined` for one that may be locked.
 */
export function fileKindError(
  kind: FileKind,
  path: string,
  directoryOk = false,
): LockError | undefined {
  switch (kind) {
    case FileKind.FILE:
      return undefined;
    case FileKind.DIRECTORY:
      return directoryOk ? undefined : new LockError({ code: "EISDIR", path });
    case FileKind.SYMLINK:
      return new LockError({ code: "ELOOP", path });
    default:
      return new LockError({
        code: "EINVAL",
        path,
        detail: "the lock path is a fifo, socket or device, not a file or directory",
      });
  }
}

/**
 * Adds to an error's message what the user can do about it (for example the
 * Deno flag that is missing), once; returns the error.
 */
export function withHint<E extends Error>(error: E, hint: string | undefined): E {
  if (hint !== undefined && !error.message.includes(hint)) error.message += ` (${hint})`;
  return error;
}
