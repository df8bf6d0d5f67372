/**
 * Fairness across processes (docs/architecture.md, "Fairness"). A process
 * that releases a lock and takes it again at once wins every race against
 * waiters the kernel is still waking. So a waiter that lost a race marks the
 * lock file itself: its access time set to when it began to wait (nothing a
 * user reads changes). A process that takes the same file again by its fast
 * path sees the mark in the `fstat` it makes anyway, keeps the lock for at
 * most a quantum after the mark, then gives it back and waits its turn: the
 * lock changes hands every quantum at most, not on every release, which
 * keeps contended throughput high while no process waits much longer than
 * a quantum plus a hand-off.
 *
 * @module
 */

import { accessTimeOf, type FileIdentity, newIdentity, sameFile } from "../../ffi/types.ts";

/** How long a holder may keep taking the lock again after a waiter marked it, in µs. */
export const QUANTUM_US = 2000;

/**
 * How long a process that gave the lock back lets waiters take it before it
 * tries again (unless a release wakes it first), in ms: longer than a waiter
 * takes to wake and lock, short enough that a mark nobody stands behind costs
 * little.
 */
export const YIELD_MS = 5;

/**
 * The wall clock in µs, as file times count (`Date`, not `performance`,
 * whose origin drifts from the wall clock after a suspend or a clock step).
 */
export function wallMicroseconds(): number {
  return Date.now() * 1000;
}

/** The file this process last took a kernel lock on, and the newest mark it has honoured. */
const last = newIdentity();
let honoured = -1;

/**
 * Notes a kernel lock just taken on the file `identity` describes, and says
 * whether to give it back: taken by a fast path that `mayYield` (not a waiter
 * whose turn it was, not `tryAcquire`), on the file this process took last
 * time, marked by a waiter longer than a quantum ago. Reads the clock only
 * when there is a new mark.
 */
export function yieldsTo(identity: FileIdentity, mayYield: boolean): boolean {
  const access = accessTimeOf(identity);
  if (!sameFile(identity, last)) {
    last.set(identity);
    honoured = access;
    return false;
  }
  if (access <= honoured) return false;
  if (!mayYield) {
    // A waiter's turn came (its own mark included), or a one-off try: nothing to give back.
    honoured = access;
    return false;
  }
  if (wallMicroseconds() - access < QUANTUM_US) return false;
  honoured = access;
  return true;
}
