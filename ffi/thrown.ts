/**
 * The errno name of an error thrown by a runtime's file API (`node:fs` in
 * every runtime, `Deno.*` in the native binding): the one rule for turning an
 * exception into the code the state machine decides on.
 *
 * @module
 */

/** Deno's error classes that carry no errno `code`, by class name. */
const DENO_ERROR_NAMES: Readonly<Record<string, string>> = {
  NotFound: "ENOENT",
  AlreadyExists: "EEXIST",
  PermissionDenied: "EACCES",
  // A missing Deno permission (`--allow-read`/`--allow-write`): a refusal, as EACCES.
  NotCapable: "EACCES",
  IsADirectory: "EISDIR",
  NotADirectory: "ENOTDIR",
  FilesystemLoop: "ELOOP",
  Busy: "EBUSY",
  WouldBlock: "EWOULDBLOCK",
  Interrupted: "EINTR",
};

/** Deno's message for an OS error it has no class for: "No locks available (os error 37)". */
const OS_ERROR = /\(os error (\d+)\)$/;

/**
 * The errno name of a thrown error: its `code` where it has one (`EAGAIN`
 * named `EWOULDBLOCK`), else the errno of Deno's error class, else the OS
 * error number in a Deno message named by `osErrorName` (this OS's table),
 * else `EIO`.
 *
 * @example
 * ```ts
 * import { thrownErrnoName } from "./thrown.ts";
 * thrownErrnoName(Object.assign(new Error("x"), { code: "ENOENT" })); // "ENOENT"
 * ```
 */
export function thrownErrnoName(
  error: unknown,
  osErrorName?: (errno: number) => string,
): string {
  const record = error as { code?: unknown; name?: unknown; message?: unknown } | null | undefined;
  const code = record?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) {
    return code === "EAGAIN" ? "EWOULDBLOCK" : code;
  }
  const name = record?.name;
  if (typeof name === "string" && name in DENO_ERROR_NAMES) return DENO_ERROR_NAMES[name];
  const number = typeof record?.message === "string"
    ? OS_ERROR.exec(record.message)?.[1]
    : undefined;
  const named = number === undefined ? undefined : osErrorName?.(Number(number));
  return named !== undefined && /^E[A-Z][A-Z0-9]*$/.test(named) ? named : "EIO";
}
