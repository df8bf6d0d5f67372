/**
 * The public types of the API (DESIGN §1).
 *
 * @module
 */

import type { BackendName } from "../ffi/types.ts";

export type { BackendName };

/** What a caller may ask for: `"auto"` lets the probe choose. */
export type BackendRequest = "auto" | "ffi" | "native" | "pidfile";

/** Options of `acquire`, `acquireSync`, `tryAcquire` and `withLock`. */
export interface LockOptions {
  /** Take a shared (read) lock; default `false` (exclusive). */
  shared?: boolean;
  /** Milliseconds to wait; default `Infinity`; `0` makes one attempt, then `LockTimeoutError`. */
  timeout?: number;
  /** Aborting rejects the wait with `signal.reason`. */
  signal?: AbortSignal;
  /** Which backend to use; default `"auto"` (or `FILELOCK_BACKEND`). */
  backend?: BackendRequest;
  /** Unlink the lock file on release (exclusive locks only); default `false`. */
  removeOnRelease?: boolean;
  /** Permission bits of a newly created lock file; default `0o644` (umask applies). */
  mode?: number;
}

/** A held lock. Release it with `release`, `releaseSync`, `using` or `await using`. */
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
}
