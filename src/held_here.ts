/**
 * The locks this thread holds, by path: what lets a synchronous wait for a
 * lock this thread already holds fail at once (`EDEADLK`) instead of waiting
 * for itself forever. Each Worker has its own copy of this module, as it has
 * its own locks.
 *
 * @module
 */

interface Holdings {
  exclusive: number;
  shared: number;
}

const holdings = new Map<string, Holdings>();

/** Notes a lock taken on `path`. */
export function noteHeld(path: string, shared: boolean): void {
  let held = holdings.get(path);
  if (held === undefined) {
    held = { exclusive: 0, shared: 0 };
    holdings.set(path, held);
  }
  if (shared) held.shared++;
  else held.exclusive++;
}

/** Notes a lock on `path` released. */
export function noteReleased(path: string, shared: boolean): void {
  const held = holdings.get(path);
  if (held === undefined) return;
  if (shared) held.shared--;
  else held.exclusive--;
  if (held.shared <= 0 && held.exclusive <= 0) holdings.delete(path);
}

/**
 * Whether this thread holds a lock on `path` that a lock of the requested
 * kind would wait for: any lock for an exclusive request, an exclusive one
 * for a shared request.
 */
export function heldHereAgainst(path: string, shared: boolean): boolean {
  const held = holdings.get(path);
  if (held === undefined) return false;
  return held.exclusive > 0 || (!shared && held.shared > 0);
}
