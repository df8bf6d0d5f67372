/**
 * The one interface every binding implements. A binding turns one call into one
 * syscall and reports errno; it never decides anything. The state machine in
 * `src/` makes every decision, once, for every backend (docs/architecture.md,
 * "Layers").
 *
 * @module
 */

/** Names of the backends, as reported by `probe()` and `Lock.backend`. */
export type BackendName =
  | "deno-ffi"
  | "bun-ffi"
  | "node-koffi"
  | "deno-native"
  | "pidfile";

/**
 * A path already encoded the way the binding's `open`/`lstat`/`unlink` want it
 * (NUL-terminated UTF-8 bytes for FFI, the string itself for native APIs).
 * Encoded once per acquire, never per attempt.
 */
export type EncodedPath = Uint8Array | string;

/** Kind of file, as `fstat`/`lstat` report it. */
export const FileKind = {
  /** A regular file. */
  FILE: 0,
  /** A directory. */
  DIRECTORY: 1,
  /** A symbolic link (only `lstat` reports it). */
  SYMLINK: 2,
  /** Anything else (fifo, socket, device). */
  OTHER: 3,
} as const;

/** One of the {@linkcode FileKind} values. */
export type FileKind = typeof FileKind[keyof typeof FileKind];

/**
 * Identity of a file, filled in by `fstat`/`lstat` without allocating:
 * `[devLow, devHigh, inoLow, inoHigh, kind, owner, mode, atimeSeconds,
 * atimeNanoseconds]`. Read it through {@linkcode sameFile},
 * {@linkcode kindOf}, {@linkcode ownerOf}, {@linkcode permissionsOf} and
 * {@linkcode accessTimeOf}.
 */
export type FileIdentity = Uint32Array;

const KIND_SLOT = 4;
const OWNER_SLOT = 5;
const MODE_SLOT = 6;
const ATIME_SECONDS_SLOT = 7;
const ATIME_NANOSECONDS_SLOT = 8;

/** The owner of a file whose owner the OS does not report (Windows). */
export const UNKNOWN_OWNER = 0xffffffff;

/** Creates an empty identity buffer. */
export function newIdentity(): FileIdentity {
  return new Uint32Array(ATIME_NANOSECONDS_SLOT + 1);
}

/** Whether two identities name the same file (device and inode; the kind is not compared). */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

/** The kind of file an identity describes. */
export function kindOf(identity: FileIdentity): FileKind {
  return identity[KIND_SLOT] as FileKind;
}

/** The user id that owns the file, or {@linkcode UNKNOWN_OWNER}. */
export function ownerOf(identity: FileIdentity): number {
  return identity[OWNER_SLOT];
}

/** The permission bits of the file's mode, with setuid, setgid and sticky (`0o7777`). */
export function permissionsOf(identity: FileIdentity): number {
  return identity[MODE_SLOT];
}

/**
 * The file's last access time in microseconds (the low 32 bits of its
 * seconds), where the binding reads it (POSIX FFI); 0 elsewhere. Waiters
 * set it to say they wait (docs/architecture.md, "Fairness").
 */
export function accessTimeOf(identity: FileIdentity): number {
  return identity[ATIME_SECONDS_SLOT] * 1e6 +
    Math.floor(identity[ATIME_NANOSECONDS_SLOT] / 1000);
}

/** Writes the access time (seconds, low 32 bits, and nanoseconds) into an identity buffer. */
export function setAccessTime(out: FileIdentity, seconds: number, nanoseconds: number): void {
  out[ATIME_SECONDS_SLOT] = seconds;
  out[ATIME_NANOSECONDS_SLOT] = nanoseconds;
}

/** Writes device, inode, kind, owner and permission bits into an identity buffer. */
export function setIdentity(
  out: FileIdentity,
  devLow: number,
  devHigh: number,
  inoLow: number,
  inoHigh: number,
  kind: FileKind,
  owner: number = UNKNOWN_OWNER,
  permissions: number = 0,
): void {
  out[0] = devLow;
  out[1] = devHigh;
  out[2] = inoLow;
  out[3] = inoHigh;
  out[KIND_SLOT] = kind;
  out[OWNER_SLOT] = owner;
  out[MODE_SLOT] = permissions & 0o7777;
}

/**
 * What `statfs` reports about the filesystem a path is on, as the OS tells
 * it: Linux gives a magic number, macOS a type name and whether the volume
 * is local, Windows a name and whether the drive is remote. `src/` decides
 * what that means.
 */
export interface FilesystemInfo {
  /** Linux's `f_type`; 0 where the OS gives none. */
  magic: number;
  /** The type's name where the OS gives one (macOS `f_fstypename`, Windows); "" otherwise. */
  name: string;
  /** Whether the OS says the volume is local; `undefined` where it says nothing. */
  local: boolean | undefined;
}

/** Constants the state machine passes through to the binding. */
export interface OpenConstants {
  readonly O_RDONLY: number;
  readonly O_RDWR: number;
  readonly O_CREAT: number;
  /** With `O_CREAT`: fail with `EEXIST` instead of opening an existing file. */
  readonly O_EXCL: number;
  readonly O_CLOEXEC: number;
  readonly O_NOFOLLOW: number;
  /** Never wait in `open` (a fifo at the lock path would wait for a writer). */
  readonly O_NONBLOCK: number;
  readonly LOCK_SH: number;
  readonly LOCK_EX: number;
  readonly LOCK_NB: number;
  readonly LOCK_UN: number;
}

/**
 * Constants of the POSIX calls that act on a process's descriptors and
 * signals (`fcntl`, `sigaction`), which a POSIX FFI binding passes through.
 */
export interface PosixConstants {
  /** `fcntl`: read the descriptor flags (`FD_CLOEXEC`). */
  readonly F_GETFD: number;
  /** `fcntl`: set the descriptor flags. */
  readonly F_SETFD: number;
  /** The close-on-exec descriptor flag. */
  readonly FD_CLOEXEC: number;
  /** `fcntl`: read the open file's status flags (`O_NONBLOCK`, the access mode). */
  readonly F_GETFL: number;
  /** `fcntl`: set the open file's status flags. */
  readonly F_SETFL: number;
  /** The access mode bits of the status flags (`O_RDONLY`, `O_WRONLY`, `O_RDWR`). */
  readonly O_ACCMODE: number;
  /** `sigaction`: the default action. */
  readonly SIG_DFL: number;
  /** `sigaction`: ignore the signal. */
  readonly SIG_IGN: number;
  /** The highest signal number (`NSIG - 1`). */
  readonly SIGNAL_MAX: number;
  /** Write to a pipe nobody reads. */
  readonly SIGPIPE: number;
  /** File size limit exceeded. */
  readonly SIGXFSZ: number;
}

/** errno names and numbers of one OS (Windows: its error codes under POSIX names). */
export interface ErrnoLookup {
  /** errno number to name (`2` -> `"ENOENT"`). */
  errnoName(errno: number): string;
  /** errno name to number (`"EWOULDBLOCK"` -> 11 on Linux); -1 when the OS has none. */
  errnoNumber(name: string): number;
}

/**
 * One kernel-lock binding. Every call returns a non-negative result on success
 * or a negative errno (`-ENOENT`, ...) on failure; errno is read right after the
 * call, on the same thread.
 */
export interface Binding extends ErrnoLookup {
  /** Backend name reported to users. */
  readonly backend: BackendName;
  /** Constants of the OS this binding runs on. */
  readonly constants: OpenConstants;
  /** This process's effective user id, where the OS and runtime tell it. */
  readonly userId: number | undefined;
  /**
   * Whether descriptors are the OS's own file descriptors (POSIX FFI), which
   * a child process can be given; not Windows handles nor the native
   * binding's own numbers.
   */
  readonly osDescriptors: boolean;
  /** Encodes an absolute path for `open`, `lstat` and `unlink`. */
  encodePath(path: string): EncodedPath;
  /** `open(2)`: a descriptor, or `-errno`. */
  open(path: EncodedPath, flags: number, mode: number): number;
  /** `flock(2)`: 0, or `-errno`. */
  flock(fd: number, operation: number): number;
  /** `fstat(2)` into `out`: 0, or `-errno`. */
  fstat(fd: number, out: FileIdentity): number;
  /** `lstat(2)` into `out`: 0, or `-errno`. */
  lstat(path: EncodedPath, out: FileIdentity): number;
  /** `unlink(2)`: 0, or `-errno`. */
  unlink(path: EncodedPath): number;
  /** `close(2)`: 0, or `-errno`. */
  close(fd: number): number;
  /**
   * `read(2)` into `buffer`: the count read (0 at the end), or `-errno`.
   * Absent where descriptors are not the OS's (Windows, the native binding).
   */
  read?(fd: number, buffer: Uint8Array): number;
  /**
   * `statfs(2)` of a path into `out`: 0, or `-errno`. Absent where the
   * binding cannot ask (the native binding).
   */
  statfs?(path: EncodedPath, out: FilesystemInfo): number;
  /**
   * `dup(2)`: a second descriptor for the same open file, which (unlike ours)
   * survives `exec`; or `-errno`. POSIX FFI bindings only.
   */
  dup?(fd: number): number;
  /**
   * `execvp(3)`: replaces this process with `argv[0]`, found on `PATH`, run
   * with `argv`, with this process's descriptors (those not close-on-exec)
   * and signal dispositions as they are. Returns only on failure, with
   * `-errno`. POSIX FFI bindings only.
   */
  exec?(argv: readonly string[]): number;
  /**
   * `fcntl(2)` with an integer argument (`F_GETFL`, `F_SETFL`, `F_GETFD`,
   * `F_SETFD`, ... of {@linkcode Binding.posixConstants}): what the call
   * returns, or `-errno` where it returns -1. POSIX FFI bindings only.
   */
  fcntl?(fd: number, command: number, argument: number): number;
  /**
   * `sigaction(2)` on `signal`: with `handler` (`SIG_DFL` or `SIG_IGN`)
   * installs it, with an empty mask and no flags; without, changes nothing.
   * Returns the handler the signal had (`SIG_DFL`, `SIG_IGN`, or another
   * number: a function's address, perhaps rounded), or `-errno`. POSIX FFI
   * bindings only.
   */
  sigaction?(signal: number, handler?: number): number;
  /** The constants of `fcntl` and `sigaction`, where the binding has them. */
  readonly posixConstants?: PosixConstants;

  /**
   * The creation time of process `pid` as an opaque token, where the OS has
   * no /proc to read it from (Windows: `GetProcessTimes`, macOS:
   * `proc_pidinfo`); `undefined` when the process cannot be opened. Used by
   * the pidfile mode to tell a reused PID from its holder.
   */
  processStartTime?(pid: number): string | undefined;
}
