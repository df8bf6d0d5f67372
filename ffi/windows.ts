/**
 * Windows: kernel32 `CreateFileW`/`LockFileEx`/`UnlockFileEx`/
 * `GetFileInformationByHandle`/`DeleteFileW`/`CloseHandle` (and, for the
 * pidfile mode's start tokens, `OpenProcess`/`GetProcessTimes`) behind the same
 * {@linkcode Binding} interface as libc. The table (constants, struct
 * layouts, error codes) is shared by the Deno, Bun and Node bindings, which
 * differ only in how they call kernel32.
 *
 * Mapping: a "descriptor" is the HANDLE value; the POSIX-style flags the
 * state machine passes are translated here; errors are Windows error codes,
 * named with the POSIX name of the same meaning (`ERROR_FILE_NOT_FOUND` ->
 * `ENOENT`), so the state machine and `LockError` work unchanged, with the
 * Windows code as `cause`.
 *
 * @module
 */

import type { BackendName, Binding, EncodedPath, FileIdentity, OpenConstants } from "./types.ts";
import { KIND_DIRECTORY, KIND_FILE, KIND_SYMLINK } from "./types.ts";
import type { ErrnoLookup } from "./posix_common.ts";

/** Flags the state machine passes; the binding translates them (they never reach Windows). */
export const WINDOWS_CONSTANTS: OpenConstants = {
  O_RDONLY: 0,
  O_RDWR: 2,
  O_CREAT: 0x40,
  O_EXCL: 0x80,
  // Handles are created non-inheritable (no SECURITY_ATTRIBUTES): nothing to ask for.
  O_CLOEXEC: 0,
  O_NOFOLLOW: 0x100,
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

/** `C:\x` -> `\\?\C:\x`, `\\server\share\x` -> `\\?\UNC\server\share\x`: no MAX_PATH limit. */
export function longPath(path: string): string {
  const backslashed = path.replaceAll("/", "\\");
  if (backslashed.startsWith("\\\\?\\") || backslashed.startsWith("\\\\.\\")) return backslashed;
  if (backslashed.startsWith("\\\\")) return `\\\\?\\UNC\\${backslashed.slice(2)}`;
  return `\\\\?\\${backslashed}`;
}

/** UTF-16LE code units of the long form of `path`, NUL-terminated, as `CreateFileW` wants. */
export function encodeWidePath(path: string): Uint8Array {
  const text = longPath(path);
  const units = new Uint16Array(text.length + 1);
  for (let i = 0; i < text.length; i++) units[i] = text.charCodeAt(i);
  return new Uint8Array(units.buffer);
}

/**
 * kernel32 as a runtime's FFI exposes it. Handles travel as numbers
 * (`INVALID_HANDLE_VALUE` is -1); `BOOL` results are 0 or non-zero.
 */
export interface RawKernel32 {
  CreateFileW(
    path: EncodedPath,
    access: number,
    share: number,
    security: null,
    disposition: number,
    flags: number,
    template: null,
  ): number;
  LockFileEx(
    handle: number,
    flags: number,
    reserved: number,
    lengthLow: number,
    lengthHigh: number,
    overlapped: Uint8Array,
  ): number;
  UnlockFileEx(
    handle: number,
    reserved: number,
    lengthLow: number,
    lengthHigh: number,
    overlapped: Uint8Array,
  ): number;
  GetFileInformationByHandle(handle: number, info: Uint8Array): number;
  GetFileAttributesW(path: EncodedPath): number;
  DeleteFileW(path: EncodedPath): number;
  CloseHandle(handle: number): number;
  GetLastError(): number;
  /** Returns 0 (NULL) on failure. */
  OpenProcess(access: number, inherit: number, pid: number): number;
  GetProcessTimes(
    process: number,
    creation: Uint8Array,
    exit: Uint8Array,
    kernel: Uint8Array,
    user: Uint8Array,
  ): number;
}

/**
 * Wraps raw kernel32 calls into a {@linkcode Binding}. Each call maps a
 * failure to `-GetLastError()`, read right after the call on this thread.
 */
export function windowsBinding(backend: BackendName, raw: RawKernel32): Binding {
  const overlapped = new Uint8Array(LAYOUT.OVERLAPPED_SIZE);
  const overlappedView = new DataView(overlapped.buffer);
  overlappedView.setUint32(LAYOUT.OVERLAPPED_OFFSET, WIN32.LOCK_OFFSET_LOW, true);
  overlappedView.setUint32(LAYOUT.OVERLAPPED_OFFSET_HIGH, WIN32.LOCK_OFFSET_HIGH, true);
  const info = new Uint8Array(LAYOUT.FILE_INFO_SIZE);
  const infoView = new DataView(info.buffer);
  const ACCESS_DENIED = WINDOWS_ERRORS.EACCES;
  const times = [0, 1, 2, 3].map(() => new Uint8Array(8));

  function identity(handle: number, out: FileIdentity): number {
    if (raw.GetFileInformationByHandle(handle, info) === 0) return -raw.GetLastError();
    const attributes = infoView.getUint32(LAYOUT.FILE_INFO_ATTRIBUTES, true);
    out[0] = infoView.getUint32(LAYOUT.FILE_INFO_VOLUME_SERIAL, true);
    out[1] = 0;
    out[2] = infoView.getUint32(LAYOUT.FILE_INFO_INDEX_LOW, true);
    out[3] = infoView.getUint32(LAYOUT.FILE_INFO_INDEX_HIGH, true);
    out[4] = attributes & WIN32.FILE_ATTRIBUTE_REPARSE_POINT
      ? KIND_SYMLINK
      : attributes & WIN32.FILE_ATTRIBUTE_DIRECTORY
      ? KIND_DIRECTORY
      : KIND_FILE;
    return 0;
  }

  /**
   * Windows answers ERROR_ACCESS_DENIED both for a directory and for a file
   * whose deletion is pending; one look at the attributes tells which.
   */
  function accessDenied(path: EncodedPath): number {
    const attributes = raw.GetFileAttributesW(path);
    if (attributes === WIN32.INVALID_FILE_ATTRIBUTES) {
      const error = raw.GetLastError();
      return error === ACCESS_DENIED || error === WINDOWS_ERRORS.EDELETEPENDING
        ? -WINDOWS_ERRORS.EDELETEPENDING
        : -ACCESS_DENIED;
    }
    return attributes & WIN32.FILE_ATTRIBUTE_DIRECTORY ? -WINDOWS_ERRORS.EISDIR : -ACCESS_DENIED;
  }

  return {
    backend,
    constants: WINDOWS_CONSTANTS,
    ...windowsErrno,
    encodePath: encodeWidePath,
    open(path, flags, _mode) {
      const access = flags & WINDOWS_CONSTANTS.O_RDWR
        ? WIN32.GENERIC_READ | WIN32.GENERIC_WRITE
        : WIN32.GENERIC_READ;
      const disposition = (flags & WINDOWS_CONSTANTS.O_CREAT) === 0
        ? WIN32.OPEN_EXISTING
        : flags & WINDOWS_CONSTANTS.O_EXCL
        ? WIN32.CREATE_NEW
        : WIN32.OPEN_ALWAYS;
      const attributes = WIN32.FILE_ATTRIBUTE_NORMAL |
        (flags & WINDOWS_CONSTANTS.O_NOFOLLOW ? WIN32.FILE_FLAG_OPEN_REPARSE_POINT : 0);
      const handle = raw.CreateFileW(
        path,
        access,
        WIN32.SHARE_ALL,
        null,
        disposition,
        attributes,
        null,
      );
      if (handle !== -1) return handle;
      const error = raw.GetLastError();
      return error === ACCESS_DENIED ? accessDenied(path) : -error;
    },
    flock(handle, operation) {
      const done = operation & WINDOWS_CONSTANTS.LOCK_UN
        ? raw.UnlockFileEx(handle, 0, WIN32.LOCK_LENGTH, 0, overlapped)
        : raw.LockFileEx(
          handle,
          (operation & WINDOWS_CONSTANTS.LOCK_NB ? WIN32.LOCKFILE_FAIL_IMMEDIATELY : 0) |
            (operation & WINDOWS_CONSTANTS.LOCK_EX ? WIN32.LOCKFILE_EXCLUSIVE_LOCK : 0),
          0,
          WIN32.LOCK_LENGTH,
          0,
          overlapped,
        );
      return done !== 0 ? 0 : -raw.GetLastError();
    },
    fstat: identity,
    lstat(path, out) {
      // No access rights needed to read the identity; the link itself, not its target.
      const handle = raw.CreateFileW(
        path,
        0,
        WIN32.SHARE_ALL,
        null,
        WIN32.OPEN_EXISTING,
        WIN32.FILE_FLAG_BACKUP_SEMANTICS | WIN32.FILE_FLAG_OPEN_REPARSE_POINT,
        null,
      );
      if (handle === -1) {
        const error = raw.GetLastError();
        // Only a pending delete refuses a zero-access open of an existing file.
        return error === ACCESS_DENIED ? -WINDOWS_ERRORS.EDELETEPENDING : -error;
      }
      const result = identity(handle, out);
      raw.CloseHandle(handle);
      return result;
    },
    unlink(path) {
      return raw.DeleteFileW(path) !== 0 ? 0 : -raw.GetLastError();
    },
    close(handle) {
      return raw.CloseHandle(handle) !== 0 ? 0 : -raw.GetLastError();
    },
    processStartTime(pid) {
      const process = raw.OpenProcess(WIN32.PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
      if (process === 0) return undefined;
      const ok = raw.GetProcessTimes(process, times[0], times[1], times[2], times[3]);
      raw.CloseHandle(process);
      if (ok === 0) return undefined;
      const creation = new DataView(times[0].buffer);
      // FILETIME: 100 ns ticks since 1601, as two 32-bit halves.
      const ticks = BigInt(creation.getUint32(4, true)) << 32n |
        BigInt(creation.getUint32(0, true));
      return `win:${ticks}`;
    },
  };
}
