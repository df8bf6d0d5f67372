/**
 * Windows: kernel32 `CreateFileW`/`LockFileEx`/`UnlockFileEx`/
 * `GetFileInformationByHandle`/`DeleteFileW`/`CloseHandle` (and, for the
 * pidfile mode's start tokens, `OpenProcess`/`GetProcessTimes`) behind the same
 * {@linkcode Binding} interface as libc. The table (`windows_table.ts`) is
 * shared by the Deno, Bun and Node bindings, which differ only in how they
 * call kernel32.
 *
 * Mapping: a "descriptor" is the HANDLE value; the POSIX-style flags the
 * state machine passes are translated here; errors are Windows error codes,
 * named with the POSIX name of the same meaning (`ERROR_FILE_NOT_FOUND` ->
 * `ENOENT`), so the state machine and `LockError` work unchanged, with the
 * Windows code as `cause`.
 *
 * @module
 */

import type { BackendName, Binding, EncodedPath, FileIdentity } from "./types.ts";
import { FileKind, setIdentity } from "./types.ts";
import { LAYOUT, WIN32, WINDOWS_CONSTANTS, WINDOWS_ERRORS, windowsErrno } from "./windows_table.ts";

/** `C:\x` -> `\\?\C:\x`, `\\server\share\x` -> `\\?\UNC\server\share\x`: no MAX_PATH limit. */
export function longPath(path: string): string {
  const backslashed = path.replaceAll("/", "\\");
  if (backslashed.startsWith("\\\\?\\") || backslashed.startsWith("\\\\.\\")) return backslashed;
  if (backslashed.startsWith("\\\\")) return `\\\\?\\UNC\\${backslashed.slice(2)}`;
  return `\\\\?\\${backslashed}`;
}

/** The NUL-terminated UTF-16LE string at the start of `bytes`. */
function wideString(bytes: Uint8Array): string {
  const units = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  const end = units.indexOf(0);
  return String.fromCharCode(...units.subarray(0, end < 0 ? units.length : end));
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
  /** Writes the root of the volume `path` is on; 0 on failure. */
  GetVolumePathNameW(path: EncodedPath, root: Uint8Array, length: number): number;
  /** Writes the filesystem's name (NTFS, FAT32, ...) of the volume at `root`; 0 on failure. */
  GetVolumeInformationW(
    root: Uint8Array,
    volumeName: null,
    volumeNameLength: number,
    serial: null,
    maximumComponentLength: null,
    flags: null,
    fileSystemName: Uint8Array,
    fileSystemNameLength: number,
  ): number;
  /** The kind of drive at `root`: 4 is `DRIVE_REMOTE`. */
  GetDriveTypeW(root: Uint8Array): number;
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
    setIdentity(
      out,
      infoView.getUint32(LAYOUT.FILE_INFO_VOLUME_SERIAL, true),
      0,
      infoView.getUint32(LAYOUT.FILE_INFO_INDEX_LOW, true),
      infoView.getUint32(LAYOUT.FILE_INFO_INDEX_HIGH, true),
      attributes & WIN32.FILE_ATTRIBUTE_REPARSE_POINT
        ? FileKind.SYMLINK
        : attributes & WIN32.FILE_ATTRIBUTE_DIRECTORY
        ? FileKind.DIRECTORY
        : FileKind.FILE,
    );
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
    // Windows files have owners, but not POSIX uids: the foreign-owner check does not apply.
    userId: undefined,
    osDescriptors: false,
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
    statfs(path, out) {
      const root = new Uint8Array(2 * 1024);
      if (raw.GetVolumePathNameW(path, root, root.length / 2) === 0) return -raw.GetLastError();
      const name = new Uint8Array(2 * 64);
      const named = raw.GetVolumeInformationW(root, null, 0, null, null, null, name, 64);
      out.magic = 0;
      out.name = named === 0 ? "" : wideString(name);
      out.local = raw.GetDriveTypeW(root) !== WIN32.DRIVE_REMOTE;
      return 0;
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
