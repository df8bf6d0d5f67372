/**
 * The locks this thread holds, by the identity of their file (device and
 * inode, as the kernel sees it): what lets a synchronous wait for a lock this
 * thread already holds fail at once (`EDEADLK`) instead of waiting for itself
 * forever, whatever path names the file (a symlinked directory, `..`, a hard
 * link). Each Worker has its own copy of this module, as it has its own locks.
 *
 * @module
 */

/**
 * The identity of the file at `path` as a held lock's backend reads it (the
 * same call that gave the held lock its identity, so that both are in the
 * same terms): `null` when there is no file at the path, `undefined` when it
 * cannot be told. The last component is not followed, as a lock never follows
 * it.
 */
export type IdentityReader = (path: string) => string | null | undefined;

/** One lock this thread holds. */
export interface Holding {
  /** The path it was taken by. */
  readonly path: string;
  readonly shared: boolean;
  /** Its file's identity, in `identityReader`'s terms (made only when asked: not on every acquire). */
  identityKey(): string;
  /** Reads the identity of another path in the same terms. */
  readonly identityReader: IdentityReader;
}

const holdings = new Set<Holding>();

/** Notes a lock taken. */
export function noteHeld(holding: Holding): void {
  holdings.add(holding);
}

/** Notes a lock released. */
export function noteReleased(holding: Holding): void {
  holdings.delete(holding);
}

/**
 * Whether this thread holds a lock on the file at `path` that a lock of the
 * requested kind would wait for: any lock for an exclusive request, an
 * exclusive one for a shared request. Costs nothing while this thread holds
 * no lock; otherwise one `lstat` of `path` per backend held. Where the file's
 * identity cannot be read, the path itself is compared.
 */
export function heldHereAgainst(path: string, shared: boolean): boolean {
  if (holdings.size === 0) return false;
  const read = new Map<IdentityReader, string | null | undefined>();
  for (const held of holdings) {
    if (shared && held.shared) continue;
    let identity: string | null | undefined;
    const reader = held.identityReader;
    if (read.has(reader)) {
      identity = read.get(reader);
    } else {
      identity = reader(path);
      read.set(reader, identity);
    }
    if (identity === undefined ? held.path === path : identity === held.identityKey()) return true;
  }
  return false;
}
