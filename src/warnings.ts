/**
 * The warnings the library gives without being asked: when the automatic
 * choice ends in the pidfile mode, which `flock(1)` and other kernel lock
 * users do not see. Once per process and kind, on stderr; choosing the mode
 * explicitly (`backend: "pidfile"`, `FILELOCK_BACKEND=pidfile`) is knowing it,
 * and silences them; `FILELOCK_WARNINGS=off` silences them without choosing a
 * backend (for a process that checks `probe()` itself).
 *
 * @module
 */

import { readEnvironment } from "../ffi/runtime.ts";

const given = new Set<string>();
let silenced: boolean | undefined;

/** Prints `message` on stderr as a filelock warning, once per process for `kind`. */
export function warnOnce(kind: string, message: string): void {
  if (given.has(kind)) return;
  given.add(kind);
  silenced ??= readEnvironment("FILELOCK_WARNINGS") === "off";
  if (!silenced) console.warn(`filelock: warning: ${message}`);
}
