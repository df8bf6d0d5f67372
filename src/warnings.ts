/**
 * The warnings the library gives without being asked: when the automatic
 * choice ends in the pidfile mode, which `flock(1)` and other kernel lock
 * users do not see. Once per process and kind, on stderr; choosing the mode
 * explicitly (`backend: "pidfile"`, `FILELOCK_BACKEND=pidfile`) is knowing it,
 * and silences them.
 *
 * @module
 */

const given = new Set<string>();

/** Prints `message` on stderr as a filelock warning, once per process for `kind`. */
export function warnOnce(kind: string, message: string): void {
  if (given.has(kind)) return;
  given.add(kind);
  console.warn(`filelock: warning: ${message}`);
}
