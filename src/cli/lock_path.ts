/**
 * The lock path as flock(1) opens it: `open(2)` follows symbolic links, so
 * `flock link.lock cmd` locks the file the link names (creating it where it
 * is missing), and a link to a directory locks the directory. The library
 * opens with `O_NOFOLLOW` on purpose (docs/architecture.md, "Invariants");
 * the CLI follows the final links itself and gives the library the path
 * they lead to.
 *
 * @module
 */

import { dirname, isAbsolute, sep } from "node:path";
import { readLink } from "../../ffi/links.ts";

/** The most links followed in a row, as Linux's `open` follows (`MAXSYMLINKS`); then ELOOP. */
const MAX_LINKS = 40;

/**
 * `path` with its final symbolic links followed: the path the last link
 * names (relative targets taken from the link's own directory, with `..`
 * left for the kernel to resolve, as it would through the link); `path`
 * itself where it is not a link, where a link cannot be read, and after
 * {@linkcode MAX_LINKS} links (a loop), where the library then reports
 * `ELOOP` as `open` would.
 */
export function followLinks(path: string): string {
  let current = path;
  for (let followed = 0; followed < MAX_LINKS; followed++) {
    const target = readLink(current);
    if (target === undefined) return current;
    current = isAbsolute(target) ? target : `${dirname(current)}${sep}${target}`;
  }
  return path;
}
