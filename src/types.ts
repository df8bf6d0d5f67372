/**
 * The public types of the API (docs/architecture.md, "The public API").
 *
 * @module
 */

import type { BackendName } from "../ffi/types.ts";
import type { LockError } from "./errors.ts";

export type { BackendName };

/** What a caller may ask for: `"auto"` lets the probe choose. */
export type BackendRequest = "auto" | "ffi" | "native" | "pidfile";

/** Options of `acquire`, `acquireSync`, `tryAcquire` and `withLock`. */
export interface LockOptions {
  /** Take a shared (read) lock; default `false` (exclusive). */
  shared?: boolean;
  /** Milliseconds to wait; default `Infinity`; `0` makes one attempt, then `LockTimeoutError`. */
  timeout?: number;
  /**
   * Aborting rejects the wait with `signal.reason`. `acquireSync` accepts only
   * an already aborted signal (it throws its reason): nothing can abort a
   * signal while the thread is blocked, so bound a synchronous wait with
   * `timeout` instead; any other signal is a `TypeError`.
   */
  signal?: AbortSignal;
  /** Which backend to use; default `"auto"` (or `FILELOCK_BACKEND`). */
  backend?: BackendRequest;
  /**
   * Unlink the lock file on release (exclusive locks only); default `false`.
   * Safe between users of this module, which check after locking that the
   * file is still the one at the path. A waiter that does not check
   * (`flock(1)`, Python's `fcntl.flock`, most other programs) can be handed
   * the unlinked file while the next user of this module locks a new one, and
   * then both hold "the" lock: where such programs share the path, keep the
   * file (the default) and, if it must go, remove it when nobody can be
   * using it.
   */
  removeOnRelease?: boolean;
  /** Permission bits of a newly created lock file; default `0o644` (umask applies). */
  mode?: number;
  /**
   * pidfile backend only: a record written on another host is stale once its
   * heartbeat (the file's mtime, refreshed by the holder) is older than this
   * many ms. Default `Infinity`: another host's lock is never reclaimed.
   */
  staleMs?: number;
  /**
   * pidfile backend only: called when the lock turns out to have been taken
   * from us (found on a heartbeat or at release), with a `LockError` of code
   * `ECOMPROMISED` naming the new holder. Default: a warning on the console.
   */
  onCompromised?: (error: LockError) => void;
  /**
   * Lock a file owned by another (non-root) user in a sticky world-writable
   * directory such as `/tmp`. Refused by default (`EPERM`): its owner can
   * delete it and so split the lock between processes that locked the old
   * file and processes that create a new one. Prefer a directory only the
   * lock's users can write (`/run/lock`, `$XDG_RUNTIME_DIR`, the app's own).
   */
  allowForeignOwner?: boolean;
}

/**
 * A held lock. Release it with `release`, `releaseSync`, `using` or `await
 * using`. Locks are not reentrant: a second acquire of the same path in the
 * same process waits for the first (`acquireSync` throws `EDEADLK` instead of
 * waiting forever for itself). A `Lock` that is dropped without release, or
 * held by a terminated Worker, stays held until the process exits.
 */
export interface Lock extends Disposable, AsyncDisposable {
  /** Absolute path of the lock file. */
  readonly path: string;
  /** Whether this is a shared (read) lock. */
  readonly shared: boolean;
  /** The backend holding it. */
  readonly backend: BackendName;
  /** Whether it has been released. */
  readonly released: boolean;
  /** Releases the lock; idempotent. */
  release(): Promise<void>;
  /** Releases the lock synchronously; idempotent. */
  releaseSync(): void;
}

/** What `probe()` reports. */
export interface ProbeResult {
  /** The runtime this module runs in. */
  runtime: "deno" | "bun" | "node";
  /** `"linux"`, `"darwin"`, `"windows"`, ... */
  os: string;
  /** The backend the request (default `"auto"`) resolves to here. */
  backend: BackendName;
  /** `true` when the backend is `"pidfile"`. */
  degraded: boolean;
  /** Why this backend, in one sentence a user can act on. */
  reason: string;
  /** `probe(path)`: the absolute lock path the answer is about. */
  path?: string;
  /** `probe(path)`: its filesystem (`"ext4"`, `"nfs"`, `"fuse"`, ...; `"unknown"` where it cannot be told). */
  fsType?: string;
  /** `probe(path)`: whether that filesystem is shared over a network. */
  network?: boolean;
}

/** Who holds a lock, as far as can be known without taking it. */
export interface LockHolder {
  /** `"pidfile"`: read from the lock file's record; `"flock"`: a kernel lock (Linux `/proc/locks`). */
  readonly backend: "pidfile" | "flock";
  /** The holder's process id (for `flock`, the process that took the lock). */
  readonly pid: number;
  /** The holder's host name, where known. */
  readonly hostname?: string;
  /** When the lock was taken (ISO 8601), where known. */
  readonly since?: string;
  /** Whether the holder holds it shared. */
  readonly shared: boolean;
  /** pidfile records: the holder's runtime. */
  readonly runtime?: string;
  /**
   * pidfile records: `true` when the holder is running, `false` when the record
   * is stale (the next acquire reclaims it), absent when it cannot be told
   * from here (another host).
   */
  readonly alive?: boolean;
}

/** What `inspect()` reports about a lock file. */
export interface LockStatus {
  /** Absolute path of the lock file. */
  readonly path: string;
  /**
   * `"free"`: nobody holds it. `"held"`: someone does (see `holders`).
   * `"stale"`: a pidfile record whose holder is gone; the next acquire
   * reclaims it. `"unknown"`: cannot be told without taking the lock.
   */
  readonly state: "free" | "held" | "stale" | "unknown";
  /** The holders, where known. */
  readonly holders: readonly LockHolder[];
  /** One sentence that says the same for a person. */
  readonly detail: string;
  /** The lock file's filesystem: `"ext4"`, `"tmpfs"`, `"nfs"`, `"fuse"`, `"smb"`, ...; `"unknown"` where it cannot be told. */
  readonly fsType: string;
  /** Whether that filesystem is shared over a network (other hosts may lock the file). */
  readonly network: boolean;
}
