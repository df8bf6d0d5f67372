/**
 * Per-OS facts the POSIX bindings need: which library, which symbols, the
 * `O_*` and `LOCK_*` constants, errno numbers, and where `struct stat` and
 * macOS's `struct proc_bsdinfo` keep the fields we read. Pure data; the code
 * that reads raw structs with these layouts is in `posix.ts`.
 *
 * @module
 */

import type { OpenConstants, PosixConstants } from "./types.ts";

/** Where `st_dev`, `st_ino` and `st_mode` live in `struct stat`, and their sizes. */
export interface StatLayout {
  /** Size to allocate for the struct (rounded up generously). */
  readonly size: number;
  readonly devOffset: number;
  /** 4 or 8 bytes. */
  readonly devSize: 4 | 8;
  readonly inoOffset: number;
  readonly modeOffset: number;
  /** `st_uid`, 4 bytes. */
  readonly uidOffset: number;
  /** 2 or 4 bytes. */
  readonly modeSize: 2 | 4;
  /** `st_atim`/`st_atimespec`: 64-bit seconds, then 64-bit nanoseconds. */
  readonly atimeOffset: number;
}

/** Where `struct statfs` keeps what `statfs` reports, per OS. */
export interface StatfsLayout {
  /** The symbol to bind (`statfs`, or `statfs$INODE64` on Intel macOS). */
  readonly symbol: string;
  /** Size to allocate. */
  readonly size: number;
  /** Linux: `f_type` (read as 32 bits: every magic fits). */
  readonly typeOffset?: number;
  /** macOS: `f_flags` (32 bits) and the `MNT_LOCAL` bit in it. */
  readonly flagsOffset?: number;
  readonly localFlag?: number;
  /** macOS: `f_fstypename` (a NUL-terminated name in 16 bytes). */
  readonly nameOffset?: number;
}

/** `struct sigaction`: how much to allocate, and where the handler (a pointer) is. */
export interface SigactionLayout {
  /** Size to allocate (at least `sizeof(struct sigaction)`). */
  readonly size: number;
  /** `sa_handler`, 8 bytes. */
  readonly handlerOffset: number;
}

/** Symbol names to bind for `fstat`/`lstat` and the calling convention. */
export interface StatSymbols {
  /** `fstat` flavour: plain `fstat(fd, buf)` or glibc's old `__fxstat(ver, fd, buf)`. */
  readonly fstat: string;
  readonly lstat: string;
  /** `ver` argument of `__fxstat`/`__lxstat`; `undefined` for the plain calls. */
  readonly version?: number;
}

/** Everything a POSIX binding needs to know about its OS and architecture. */
export interface PosixTable {
  readonly os: "linux" | "darwin";
  readonly arch: "x86_64" | "aarch64";
  /** Candidate library names, tried in order. */
  readonly libraries: readonly string[];
  /** The function returning a pointer to this thread's errno. */
  readonly errnoLocation: string;
  /**
   * Symbol sets for stat, tried in order (glibc < 2.33 lacks `fstat`, only has
   * `__fxstat`).
   */
  readonly statSymbols: readonly StatSymbols[];
  readonly stat: StatLayout;
  readonly statfs: StatfsLayout;
  /**
   * `open` and `fcntl` are variadic, with two fixed arguments each. Where
   * variadic arguments go on the stack (Apple arm64), the third (`mode`, the
   * `fcntl` argument) must be passed after this many dummy 64-bit register
   * arguments so that it lands where `va_arg` reads it. 0 elsewhere.
   */
  readonly variadicPadding: number;
  readonly constants: OpenConstants;
  /** `fcntl` and `sigaction` constants. */
  readonly posixConstants: PosixConstants;
  readonly sigaction: SigactionLayout;
  /** errno name -> number. */
  readonly errno: Readonly<Record<string, number>>;
  /** Where a process's start time comes from, on an OS without /proc (macOS). */
  readonly processInfo?: ProcessInfoLayout;
}

/**
 * macOS's `proc_pidinfo(pid, flavor, 0, buffer, size)` with flavor
 * `PROC_PIDTBSDINFO`: the offsets in `struct proc_bsdinfo` (sys/proc_info.h)
 * of the fields the start token is checked and made from.
 */
export interface ProcessInfoLayout {
  readonly flavor: number;
  /** `sizeof(struct proc_bsdinfo)`, which the call returns when it filled the struct. */
  readonly size: number;
  /** `pbi_pid` (uint32). */
  readonly pidOffset: number;
  /** `pbi_start_tvsec` (uint64). */
  readonly startSecondsOffset: number;
  /** `pbi_start_tvusec` (uint64). */
  readonly startMicrosecondsOffset: number;
}

/**
 * `struct proc_bsdinfo`: twelve 32-bit fields (48 bytes), `pbi_comm[16]`,
 * `pbi_name[32]`, six more 32-bit fields (to 120), then the two 64-bit start
 * time fields; the same on Intel and Apple silicon.
 */
export const DARWIN_PROC_BSDINFO: ProcessInfoLayout = {
  flavor: 3,
  size: 136,
  pidOffset: 12,
  startSecondsOffset: 120,
  startMicrosecondsOffset: 128,
};

const LOCK = { LOCK_SH: 1, LOCK_EX: 2, LOCK_NB: 4, LOCK_UN: 8 } as const;

/** `fcntl` commands and flags, the same on Linux and macOS. */
const FCNTL = {
  F_GETFD: 1,
  F_SETFD: 2,
  FD_CLOEXEC: 1,
  F_GETFL: 3,
  F_SETFL: 4,
  O_ACCMODE: 3,
} as const;

/** Linux (x86_64 and aarch64): 64 signals (`_NSIG` 65). */
const LINUX_POSIX: PosixConstants = {
  ...FCNTL,
  SIG_DFL: 0,
  SIG_IGN: 1,
  SIGNAL_MAX: 64,
  SIGPIPE: 13,
  SIGXFSZ: 25,
};

/** macOS: 31 signals (`NSIG` 32). */
const DARWIN_POSIX: PosixConstants = {
  ...FCNTL,
  SIG_DFL: 0,
  SIG_IGN: 1,
  SIGNAL_MAX: 31,
  SIGPIPE: 13,
  SIGXFSZ: 25,
};

/**
 * `struct sigaction` on 64-bit Linux (glibc and musl): `sa_handler` first,
 * 152 bytes in all (handler, a 128-byte mask, flags, restorer).
 */
const LINUX_SIGACTION: SigactionLayout = { size: 152, handlerOffset: 0 };

/** `struct sigaction` on macOS: `sa_handler` (8), `sa_mask` (4), `sa_flags` (4). */
const DARWIN_SIGACTION: SigactionLayout = { size: 16, handlerOffset: 0 };

const LINUX_ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EWOULDBLOCK: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ELOOP: 40,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  // The same number on Linux; Deno names it ENOTSUP.
  ENOTSUP: 95,
  ECONNABORTED: 103,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ESTALE: 116,
  EDQUOT: 122,
};

const DARWIN_ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  EWOULDBLOCK: 35,
  ENOTSUP: 45,
  ECONNABORTED: 53,
  ENOTCONN: 57,
  ETIMEDOUT: 60,
  ELOOP: 62,
  ENAMETOOLONG: 63,
  EDQUOT: 69,
  ESTALE: 70,
  ENOLCK: 77,
  ENOSYS: 78,
  EOVERFLOW: 84,
  EOPNOTSUPP: 102,
};

const GLIBC_STAT_SYMBOLS = (oldVersion: number): StatSymbols[] => [
  { fstat: "fstat", lstat: "lstat" },
  { fstat: "__fxstat", lstat: "__lxstat", version: oldVersion },
];

const LINUX_LIBRARIES = ["libc.so.6", "libc.so"] as const;

/** `struct statfs` on 64-bit Linux (x86_64 and the generic layout of aarch64): `f_type` first. */
const LINUX_STATFS: StatfsLayout = { symbol: "statfs", size: 128, typeOffset: 0 };

/**
 * `struct statfs` on macOS (64-bit inodes): `f_flags` at 64, `f_fstypename`
 * at 72; `MNT_LOCAL` is 0x1000.
 */
const darwinStatfs = (symbol: string): StatfsLayout => ({
  symbol,
  size: 2176,
  flagsOffset: 64,
  localFlag: 0x1000,
  nameOffset: 72,
});

/** Linux on x86_64 (glibc or musl). */
export const LINUX_X86_64: PosixTable = {
  os: "linux",
  arch: "x86_64",
  libraries: LINUX_LIBRARIES,
  errnoLocation: "__errno_location",
  statSymbols: GLIBC_STAT_SYMBOLS(1),
  statfs: LINUX_STATFS,
  stat: {
    size: 256,
    devOffset: 0,
    devSize: 8,
    inoOffset: 8,
    modeOffset: 24,
    modeSize: 4,
    uidOffset: 28,
    atimeOffset: 72,
  },
  variadicPadding: 0,
  constants: {
    O_RDONLY: 0,
    O_RDWR: 2,
    O_CREAT: 0o100,
    O_EXCL: 0o200,
    O_CLOEXEC: 0o2000000,
    O_NOFOLLOW: 0o400000,
    O_NONBLOCK: 0o4000,
    ...LOCK,
  },
  posixConstants: LINUX_POSIX,
  sigaction: LINUX_SIGACTION,
  errno: LINUX_ERRNO,
};

/**
 * Linux on aarch64. Note `O_NOFOLLOW` is 0o100000 here, not x86's 0o400000
 * (which is `O_LARGEFILE` on arm64), and `struct stat` is the generic layout.
 */
export const LINUX_AARCH64: PosixTable = {
  os: "linux",
  arch: "aarch64",
  libraries: LINUX_LIBRARIES,
  errnoLocation: "__errno_location",
  statSymbols: GLIBC_STAT_SYMBOLS(0),
  statfs: LINUX_STATFS,
  stat: {
    size: 256,
    devOffset: 0,
    devSize: 8,
    inoOffset: 8,
    modeOffset: 16,
    modeSize: 4,
    uidOffset: 24,
    atimeOffset: 72,
  },
  variadicPadding: 0,
  constants: {
    O_RDONLY: 0,
    O_RDWR: 2,
    O_CREAT: 0o100,
    O_EXCL: 0o200,
    O_CLOEXEC: 0o2000000,
    O_NOFOLLOW: 0o100000,
    O_NONBLOCK: 0o4000,
    ...LOCK,
  },
  posixConstants: LINUX_POSIX,
  sigaction: LINUX_SIGACTION,
  errno: LINUX_ERRNO,
};

const DARWIN_STAT: StatLayout = {
  size: 256,
  devOffset: 0,
  devSize: 4,
  inoOffset: 8,
  modeOffset: 4,
  modeSize: 2,
  uidOffset: 16,
  atimeOffset: 32,
};

const DARWIN_CONSTANTS: OpenConstants = {
  O_RDONLY: 0,
  O_RDWR: 2,
  O_CREAT: 0x200,
  O_EXCL: 0x800,
  O_CLOEXEC: 0x1000000,
  O_NOFOLLOW: 0x100,
  O_NONBLOCK: 0x4,
  ...LOCK,
};

/** macOS on Intel: 64-bit inode symbols carry the `$INODE64` suffix. */
export const DARWIN_X86_64: PosixTable = {
  os: "darwin",
  arch: "x86_64",
  libraries: ["/usr/lib/libSystem.B.dylib"],
  errnoLocation: "__error",
  statSymbols: [{ fstat: "fstat$INODE64", lstat: "lstat$INODE64" }],
  statfs: darwinStatfs("statfs$INODE64"),
  stat: DARWIN_STAT,
  variadicPadding: 0,
  constants: DARWIN_CONSTANTS,
  posixConstants: DARWIN_POSIX,
  sigaction: DARWIN_SIGACTION,
  errno: DARWIN_ERRNO,
  processInfo: DARWIN_PROC_BSDINFO,
};

/** macOS on Apple silicon: variadic arguments go on the stack. */
export const DARWIN_AARCH64: PosixTable = {
  os: "darwin",
  arch: "aarch64",
  libraries: ["/usr/lib/libSystem.B.dylib"],
  errnoLocation: "__error",
  statSymbols: [{ fstat: "fstat", lstat: "lstat" }],
  statfs: darwinStatfs("statfs"),
  stat: DARWIN_STAT,
  variadicPadding: 6,
  constants: DARWIN_CONSTANTS,
  posixConstants: DARWIN_POSIX,
  sigaction: DARWIN_SIGACTION,
  errno: DARWIN_ERRNO,
  processInfo: DARWIN_PROC_BSDINFO,
};

/**
 * The table for an OS and architecture, or `undefined` where no binding
 * exists yet.
 *
 * @example
 * ```ts
 * import { posixTable } from "./posix_tables.ts";
 * posixTable("linux", "x86_64")?.constants.O_CREAT; // 0o100
 * ```
 */
export function posixTable(os: string, arch: string): PosixTable | undefined {
  const a = arch === "x64" || arch === "x86_64"
    ? "x86_64"
    : arch === "arm64" || arch === "aarch64"
    ? "aarch64"
    : arch;
  if (os === "linux") {
    return a === "x86_64" ? LINUX_X86_64 : a === "aarch64" ? LINUX_AARCH64 : undefined;
  }
  if (os === "darwin") {
    return a === "x86_64" ? DARWIN_X86_64 : a === "aarch64" ? DARWIN_AARCH64 : undefined;
  }
  return undefined;
}
