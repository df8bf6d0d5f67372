/**
 * Windows facts shared by the Deno, Bun and Node kernel32 bindings: the flags
 * the state machine passes, kernel32's constants, the x64 struct layouts, and
 * Windows error codes named with the POSIX error of the same meaning. Pure
 * data; the binding that uses it is `windows.ts`.
 *
 * @module
 */

import type { ErrnoLookup, OpenConstants } from "./types.ts";

/** Flags the state machine passes; the binding translates them (they never reach Windows). */
export const WINDOWS_CONSTANTS: OpenConstants = {
  O_RDONLY: 0,
  O_RDWR: 2,
  O_CREAT: 0x40,
  O_EXCL: 0x80,
  // Handles are created non-inheritable (no SECURITY_ATTRIBUTES): nothing to ask for.
  O_CLOEXEC: 0,
  O_NOFOLLOW: 0x100,
  // CreateFileW never waits for a writer: nothing to ask for.
  O_NONBLOCK: 0,
  LOCK_SH: 1,
  LOCK_EX: 2,
  LOCK_NB: 4,
  LOCK_UN: 8,
};

/** kernel32 constants (winnt.h, fileapi.h, minwinbase.h). */
export const WIN32 = {
  GENERIC_READ: 0x80000000,
  GENERIC_WRITE: 0x40000000,
  /** FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE: others may read, write and delete. */
  SHARE_ALL: 0x7,
  CREATE_NEW: 1,
  OPEN_EXISTING: 3,
  OPEN_ALWAYS: 4,
  FILE_ATTRIBUTE_DIRECTORY: 0x10,
  FILE_ATTRIBUTE_NORMAL: 0x80,
  FILE_ATTRIBUTE_REPARSE_POINT: 0x400,
  FILE_FLAG_BACKUP_SEMANTICS: 0x02000000,
  FILE_FLAG_OPEN_REPARSE_POINT: 0x00200000,
  LOCKFILE_FAIL_IMMEDIATELY: 0x1,
  LOCKFILE_EXCLUSIVE_LOCK: 0x2,
  INVALID_FILE_ATTRIBUTES: 0xffffffff,
  PROCESS_QUERY_LIMITED_INFORMATION: 0x1000,
  /** GetDriveTypeW: a network drive. */
  DRIVE_REMOTE: 4,
  /**
   * The locked range: one byte at offset 2^63 - 2, far past any content, so
   * that Windows' mandatory byte-range locks never stop anyone reading or
   * writing the file itself.
   */
  LOCK_OFFSET_LOW: 0xfffffffe,
  LOCK_OFFSET_HIGH: 0x7fffffff,
  LOCK_LENGTH: 1,
} as const;

/** x64 (and arm64) struct layouts. */
export const LAYOUT = {
  /** OVERLAPPED: Internal, InternalHigh (pointer-sized), Offset, OffsetHigh, hEvent. */
  OVERLAPPED_SIZE: 32,
  OVERLAPPED_OFFSET: 16,
  OVERLAPPED_OFFSET_HIGH: 20,
  /** BY_HANDLE_FILE_INFORMATION. */
  FILE_INFO_SIZE: 52,
  FILE_INFO_ATTRIBUTES: 0,
  FILE_INFO_VOLUME_SERIAL: 28,
  FILE_INFO_INDEX_HIGH: 44,
  FILE_INFO_INDEX_LOW: 48,
} as const;

/** Windows error codes (winerror.h) named with the POSIX error of the same meaning. */
export const WINDOWS_ERRORS: Readonly<Record<string, number>> = {
  ENOENT: 2, // ERROR_FILE_NOT_FOUND (3, ERROR_PATH_NOT_FOUND, below)
  EMFILE: 4, // ERROR_TOO_MANY_OPEN_FILES
  EACCES: 5, // ERROR_ACCESS_DENIED
  EBADF: 6, // ERROR_INVALID_HANDLE
  ENOMEM: 8, // ERROR_NOT_ENOUGH_MEMORY
  EROFS: 19, // ERROR_WRITE_PROTECT
  EBUSY: 32, // ERROR_SHARING_VIOLATION
  EEXIST: 80, // ERROR_FILE_EXISTS (183, ERROR_ALREADY_EXISTS, below)
  EWOULDBLOCK: 33, // ERROR_LOCK_VIOLATION
  EOPNOTSUPP: 50, // ERROR_NOT_SUPPORTED
  ENOSPC: 112, // ERROR_DISK_FULL
  EINVAL: 123, // ERROR_INVALID_NAME
  ENOLCK: 158, // ERROR_NOT_LOCKED
  ENAMETOOLONG: 206, // ERROR_FILENAME_EXCED_RANGE
  ENOTDIR: 267, // ERROR_DIRECTORY
  EDELETEPENDING: 303, // ERROR_DELETE_PENDING
  ELOOP: 1921, // ERROR_CANT_RESOLVE_FILENAME
  // Not Windows codes: what the binding reports for situations Windows names differently.
  EISDIR: 0x20000001, // ERROR_ACCESS_DENIED on a directory
  EINTR: 0x20000002, // never happens; the state machine asks for its number
};

/** Codes that share a name with another (the name table keeps the first). */
const ALIASES: Readonly<Record<number, string>> = {
  3: "ENOENT", // ERROR_PATH_NOT_FOUND
  87: "EINVAL", // ERROR_INVALID_PARAMETER
  183: "EEXIST", // ERROR_ALREADY_EXISTS
  161: "EINVAL", // ERROR_BAD_PATHNAME
  997: "EWOULDBLOCK", // ERROR_IO_PENDING: a lock that would have to wait
  1117: "EIO", // ERROR_IO_DEVICE
};

const NAMES = new Map<number, string>([
  ...Object.entries(WINDOWS_ERRORS).map(([name, code]) => [code, name] as [number, string]),
  ...Object.entries(ALIASES).map(([code, name]) => [Number(code), name] as [number, string]),
]);

/** Error names of Windows codes, and back. */
export const windowsErrno: ErrnoLookup = {
  errnoName: (code) => NAMES.get(code) ?? `WIN${code}`,
  errnoNumber: (name) => WINDOWS_ERRORS[name] ?? -1,
};
