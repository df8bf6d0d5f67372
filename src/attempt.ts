/**
 * What one attempt at a lock found, whatever the backend: the one vocabulary
 * between the backends' attempts and the wait loop (docs/architecture.md,
 * "Where each decision is made").
 *
 * @module
 */

import type { LockError } from "./errors.ts";

/**
 * The outcome of one attempt:
 * - `held`: we hold the lock; `value` is what holds it (a descriptor, a file).
 * - `busy`: someone else holds it; wait and try again.
 * - `replaced`: the file changed under us (unlinked, replaced, reclaimed);
 *   someone made progress, so try again at once.
 * - `unsupported`: the filesystem has no `flock(2)`; the acquisition decides
 *   whether to fall back to pidfile or to throw `error`.
 */
export type Attempt<T> =
  | { readonly outcome: "held"; readonly value: T }
  | { readonly outcome: "busy" }
  | { readonly outcome: "replaced" }
  | { readonly outcome: "unsupported"; readonly error: LockError };

/** Someone else holds the lock. */
export const BUSY: { readonly outcome: "busy" } = Object.freeze({ outcome: "busy" });
/** The file changed under the attempt: try again at once. */
export const REPLACED: { readonly outcome: "replaced" } = Object.freeze({ outcome: "replaced" });

/** We hold the lock through `value`. */
export function held<T>(value: T): Attempt<T> {
  return { outcome: "held", value };
}
