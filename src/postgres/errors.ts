/**
 * What the clients' errors mean for a lock: the SQLSTATE of a server error
 * (the `postgres` package puts it in `code`, `Bun.sql` in `errno`), and the
 * `LockError` an unexpected one becomes.
 *
 * @module
 */

import { LockError } from "../errors.ts";

/** `lock_not_available`: the server's `lock_timeout` ended a wait. */
export const LOCK_NOT_AVAILABLE = "55P03";
/** `query_canceled`: our cancel request ended a wait. */
export const QUERY_CANCELED = "57014";

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of a server error, or `undefined` for any other error. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { errno, code } = error as { errno?: unknown; code?: unknown };
  if (typeof errno === "string" && SQLSTATE.test(errno)) return errno;
  if (typeof code === "string" && SQLSTATE.test(code)) return code;
  return undefined;
}

/** Words for an error from the client, for messages. */
export function describe(error: unknown): string {
  if (error instanceof Error) {
    const state = sqlState(error);
    return state === undefined ? error.message : `${error.message} (SQLSTATE ${state})`;
  }
  return String(error);
}

/**
 * The `LockError` for an error the client reported while taking the lock
 * `name`: `EACCES` for missing privileges, an errno-style code where the
 * client gave one (`ECONNREFUSED`, ...), `ECONNRESET` for a closed
 * connection, else `EIO`; the client's error is the `cause`.
 */
export function acquireError(error: unknown, name: string): LockError {
  if (error instanceof LockError) return error;
  const state = sqlState(error);
  const code = (error as { code?: unknown } | null)?.code;
  let lockCode = "EIO";
  if (state === "42501") lockCode = "EACCES";
  else if (state === undefined && typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    lockCode = code;
  } else if (
    state === undefined || state.startsWith("08") || state.startsWith("57P") || state === "25P03"
  ) lockCode = "ECONNRESET";
  return new LockError({
    code: lockCode,
    path: name,
    cause: error,
    detail: `PostgreSQL: ${describe(error)}`,
  });
}
