/**
 * The `filelock` exit codes: sysexits.h, as util-linux `flock(1)` uses them.
 *
 * @module
 */

import type { LockError } from "../errors.ts";

/** Bad usage. */
export const EX_USAGE = 64;
/** The descriptor cannot be locked (descriptor mode). */
export const EX_DATAERR = 65;
/** The lock file cannot be opened. */
export const EX_NOINPUT = 66;
/** The command cannot be run, or the backend is not available. */
export const EX_UNAVAILABLE = 69;
/** An OS resource ran out. */
export const EX_OSERR = 71;
/** The lock file cannot be created. */
export const EX_CANTCREAT = 73;

/** The exit code for a lock error. */
export function errorExitCode(error: LockError): number {
  switch (error.code) {
    case "EUNSUPPORTED":
      return EX_UNAVAILABLE;
    case "EMFILE":
    case "ENFILE":
    case "ENOMEM":
      return EX_OSERR;
    case "EROFS":
    case "ENOSPC":
      return EX_CANTCREAT;
    default:
      return EX_NOINPUT;
  }
}
