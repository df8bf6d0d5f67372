/**
 * The names of reclaim guards: one per lock path and level, the same in
 * every process and runtime, and always within `NAME_MAX`
 * (docs/architecture.md, "The pidfile mode").
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import type { Found } from "./judge.ts";

/** FNV-1a 64 of `text` in hex. */
function shortHash(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

/** Longest file name in bytes (`NAME_MAX` on Linux and macOS; Windows counts UTF-16 units, and allows as many). */
export const NAME_MAX = 255;
const encoder = new TextEncoder();

/**
 * The guard file of `level` (1: the one that serialises the reclaim of the
 * lock file; 2: of a dead level-1 guard; ...). One name per lock path and
 * level, so that every process, in every runtime, meets the same guard, and a
 * guard left by a reclaimer that died is found by the next reclaim. A name
 * that would not fit `NAME_MAX` is shortened, with a hash of the full name;
 * `shorten: false` leaves it long (for tests: what fails with `ENAMETOOLONG`).
 */
export function guardPath(path: string, level: number, shorten = true): string {
  const name = basename(path);
  const suffix = level === 1 ? ".reclaim" : `.reclaim-${level}`;
  if (!shorten || encoder.encode(name).length + suffix.length <= NAME_MAX) {
    return `${path}${suffix}`;
  }
  const hash = `~${shortHash(name)}`;
  let prefix = name;
  while (encoder.encode(prefix).length + hash.length + suffix.length > NAME_MAX) {
    prefix = prefix.slice(0, -1);
  }
  return join(dirname(path), `${prefix}${hash}${suffix}`);
}

/**
 * The guard name of old, for tests only: after the stale holding (its token,
 * or for a file without a record its identity, size and mtime in
 * microseconds). Runtimes that read mtimes with different precision (Deno in
 * whole milliseconds) met different guards for one file, and every dead
 * reclaimer left a guard of its own name.
 */
export function holdingGuardPath(path: string, found: Found): string {
  const { status, record } = found;
  const key = record !== undefined
    ? record.token
    : `m${status.dev}-${status.ino}-${Math.round(status.mtimeMs * 1000)}-${status.size}`;
  return `${path}.${shortHash(key)}.reclaim`;
}
