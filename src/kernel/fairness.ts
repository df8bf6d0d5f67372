/**
 * Fairness across processes (docs/architecture.md, "Fairness"): a process
 * that releases a lock and takes it again at once wins every race against
 * waiters the kernel is still waking. So a waiter that lost a race says so on
 * the lock file itself (its access time set to now, which changes nothing a
 * user reads), and a process that takes the same file again sees, in the
 * `fstat` it makes anyway, that someone waited meanwhile: it gives the lock
 * back and waits its turn.
 *
 * @module
 */

import { accessTimeOf, type FileIdentity, newIdentity, sameFile } from "../../ffi/types.ts";

/** The file this process last took a kernel lock on, and its access time then. */
const last = newIdentity();
let lastAccess = -1;

/**
 * Notes a kernel lock just taken on the file `identity` describes; whether
 * someone marked the file as waited for since this process last took it
 * (only the latest file is remembered: a process looping on one lock).
 */
export function waitedForSinceLastTime(identity: FileIdentity): boolean {
  const access = accessTimeOf(identity);
  const waited = access > lastAccess && lastAccess >= 0 && sameFile(identity, last);
  last.set(identity);
  lastAccess = access;
  return waited;
}

/**
 * How long a process that gave the lock back lets waiters take it before it
 * tries again (unless a release wakes it first): longer than a waiter takes
 * to wake and lock, short enough that a mark nobody stands behind costs little.
 */
export const YIELD_MS = 5;
