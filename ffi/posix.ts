/**
 * The POSIX binding, shared by the three FFI runtimes: each runtime binds the
 * raw libc calls (`deno.ts`, `bun.ts`, `node.ts`), and {@linkcode posixBinding}
 * turns them into a {@linkcode Binding}: path encoding, errno reading, and the
 * decoding of the raw structs the calls fill in. No runtime API is used here.
 *
 * @module
 */

import type {
  BackendName,
  Binding,
  EncodedPath,
  ErrnoLookup,
  FileIdentity,
  FileKind,
  FilesystemInfo,
} from "./types.ts";
import { FileKind as Kind, setIdentity } from "./types.ts";
import type {
  PosixTable,
  ProcessInfoLayout,
  StatfsLayout,
  StatLayout,
  StatSymbols,
} from "./posix_tables.ts";

const encoder = new TextEncoder();

/** UTF-8 bytes of `path` followed by a NUL, as `open(2)` wants them. */
function encodeCString(path: string): Uint8Array {
  const bytes = encoder.encode(path);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** Builds the errno lookups of a table. */
export function errnoLookup(table: PosixTable): ErrnoLookup {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(table.errno)) {
    if (!names.has(value)) names.set(value, name);
  }
  return {
    errnoName: (errno) => names.get(errno) ?? `E${errno}`,
    errnoNumber: (name) => table.errno[name] ?? -1,
  };
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** Maps `st_mode` to a {@linkcode FileKind}. */
function kindOfMode(mode: number): FileKind {
  const type = mode & S_IFMT;
  return type === S_IFREG
    ? Kind.FILE
    : type === S_IFDIR
    ? Kind.DIRECTORY
    : type === S_IFLNK
    ? Kind.SYMLINK
    : Kind.OTHER;
}

/** Reads dev/ino/kind/owner/mode out of a raw `struct stat` into an identity buffer. */
function readStat(layout: StatLayout, view: DataView, out: FileIdentity): void {
  const mode = layout.modeSize === 4
    ? view.getUint32(layout.modeOffset, true)
    : view.getUint16(layout.modeOffset, true);
  setIdentity(
    out,
    view.getUint32(layout.devOffset, true),
    layout.devSize === 8 ? view.getUint32(layout.devOffset + 4, true) : 0,
    view.getUint32(layout.inoOffset, true),
    view.getUint32(layout.inoOffset + 4, true),
    kindOfMode(mode),
    view.getUint32(layout.uidOffset, true),
    mode,
  );
}

const decoder = new TextDecoder();

/** Reads what a raw `struct statfs` says into `out`. */
function readStatfs(layout: StatfsLayout, view: DataView, out: FilesystemInfo): void {
  out.magic = layout.typeOffset === undefined ? 0 : view.getUint32(layout.typeOffset, true);
  out.local = layout.flagsOffset === undefined
    ? undefined
    : (view.getUint32(layout.flagsOffset, true) & layout.localFlag!) !== 0;
  if (layout.nameOffset === undefined) {
    out.name = "";
  } else {
    const bytes = new Uint8Array(view.buffer, layout.nameOffset, 16);
    const end = bytes.indexOf(0);
    out.name = decoder.decode(bytes.subarray(0, end < 0 ? 16 : end));
  }
}

/** 2000-01-01: no process running now started before it. */
const EARLIEST_START_SECONDS = 946_684_800;

/**
 * The start token in a `proc_bsdinfo` that `proc_pidinfo` filled (`written`
 * bytes), or `undefined` unless the answer is self-consistent: the whole
 * struct was written, it names `pid`, and the start time is a plausible wall
 * clock time. A layout mistake so gives no token (the holder is judged by
 * signal 0 alone) rather than one that changes and makes a live holder look
 * stale.
 *
 * @example
 * ```ts
 * import { startTokenFromProcessInfo } from "./posix.ts";
 * import { DARWIN_PROC_BSDINFO } from "./posix_tables.ts";
 * const view = new DataView(new ArrayBuffer(DARWIN_PROC_BSDINFO.size));
 * startTokenFromProcessInfo(DARWIN_PROC_BSDINFO, view, 0, 42, Date.now()); // undefined
 * ```
 */
export function startTokenFromProcessInfo(
  layout: ProcessInfoLayout,
  view: DataView,
  written: number,
  pid: number,
  nowMs: number,
): string | undefined {
  if (written !== layout.size || view.getUint32(layout.pidOffset, true) !== pid) return undefined;
  const seconds = Number(view.getBigUint64(layout.startSecondsOffset, true));
  const microseconds = Number(view.getBigUint64(layout.startMicrosecondsOffset, true));
  if (
    seconds < EARLIEST_START_SECONDS || seconds * 1000 > nowMs + 86_400_000 ||
    microseconds >= 1_000_000
  ) {
    return undefined;
  }
  return `mac:${seconds}.${String(microseconds).padStart(6, "0")}`;
}

/**
 * macOS's `proc_pidinfo(pid, flavor, arg, buffer, size)`, bound by each
 * runtime's binding and passed to {@linkcode posixBinding}.
 */
export type ProcessInfoCall = (
  pid: number,
  flavor: number,
  arg: number,
  buffer: Uint8Array,
  size: number,
) => number;

/** The dummy register arguments that put `open`'s mode where `va_arg` reads it. */
export function variadicPadding(table: PosixTable): number[] {
  return new Array<number>(table.variadicPadding).fill(0);
}

/** Raw libc entry points as a runtime's FFI exposes them (C return values). */
export interface RawLibc {
  open(path: EncodedPath, flags: number, ...modeAndPadding: number[]): number;
  flock(fd: number, operation: number): number;
  fstat(...args: unknown[]): number;
  lstat(...args: unknown[]): number;
  unlink(path: EncodedPath): number;
  close(fd: number): number;
  read(fd: number, buffer: Uint8Array, count: number): number;
  dup(fd: number): number;
  dup2(fd: number, target: number): number;
  statfs(path: EncodedPath, buffer: Uint8Array): number;
  geteuid(): number;
}

/**
 * `execvp(file, argv)` as a runtime's FFI can call it: given the C strings,
 * it builds the NULL-terminated pointer array (how is the runtime's own) and
 * returns `execvp`'s -1 on failure.
 */
export type ExecCall = (file: Uint8Array, argv: readonly Uint8Array[]) => number;

/**
 * Wraps raw libc calls into a {@linkcode Binding}: each call maps a C failure
 * to `-errno`, read through `readErrno` right after the call, on this thread.
 * `statVersion` is the `ver` argument of glibc's old `__fxstat`/`__lxstat`.
 */
export function posixBinding(
  backend: BackendName,
  table: PosixTable,
  raw: RawLibc,
  statVersion: number | undefined,
  readErrno: () => number,
  bindProcessInfo?: (library: string) => ProcessInfoCall,
  bindExec?: (library: string) => ExecCall,
): Binding {
  const statBuffer = new Uint8Array(table.stat.size);
  const statView = new DataView(statBuffer.buffer);
  const layout = table.stat;
  const { errnoName, errnoNumber } = errnoLookup(table);
  const pad = variadicPadding(table);
  const rawOpen = raw.open, rawFlock = raw.flock, rawFstat = raw.fstat;
  const rawLstat = raw.lstat, rawUnlink = raw.unlink, rawClose = raw.close, rawRead = raw.read;
  const rawDup = raw.dup, rawStatfs = raw.statfs;
  const statfsBuffer = new Uint8Array(table.statfs.size);
  const statfsView = new DataView(statfsBuffer.buffer);
  const open = pad.length === 0
    ? (path: EncodedPath, flags: number, mode: number): number => {
      const fd = rawOpen(path, flags, mode);
      return fd >= 0 ? fd : -readErrno();
    }
    : (path: EncodedPath, flags: number, mode: number): number => {
      const fd = rawOpen(path, flags, ...pad, mode);
      return fd >= 0 ? fd : -readErrno();
    };
  const fstat = statVersion === undefined
    ? (fd: number) => rawFstat(fd, statBuffer)
    : (fd: number) => rawFstat(statVersion, fd, statBuffer);
  const lstat = statVersion === undefined
    ? (path: EncodedPath) => rawLstat(path, statBuffer)
    : (path: EncodedPath) => rawLstat(statVersion, path, statBuffer);
  return {
    backend,
    constants: table.constants,
    userId: raw.geteuid(),
    osDescriptors: true,
    errnoName,
    errnoNumber,
    encodePath: encodeCString,
    open,
    flock(fd: number, operation: number): number {
      return rawFlock(fd, operation) === 0 ? 0 : -readErrno();
    },
    fstat(fd: number, out: FileIdentity): number {
      if (fstat(fd) !== 0) return -readErrno();
      readStat(layout, statView, out);
      return 0;
    },
    lstat(path: EncodedPath, out: FileIdentity): number {
      if (lstat(path) !== 0) return -readErrno();
      readStat(layout, statView, out);
      return 0;
    },
    unlink(path: EncodedPath): number {
      return rawUnlink(path) === 0 ? 0 : -readErrno();
    },
    close(fd: number): number {
      return rawClose(fd) === 0 ? 0 : -readErrno();
    },
    read(fd: number, buffer: Uint8Array): number {
      const count = Number(rawRead(fd, buffer, buffer.length));
      return count >= 0 ? count : -readErrno();
    },
    statfs(path: EncodedPath, out: FilesystemInfo): number {
      if (rawStatfs(path, statfsBuffer) !== 0) return -readErrno();
      readStatfs(table.statfs, statfsView, out);
      return 0;
    },
    dup(fd: number): number {
      const copy = rawDup(fd);
      return copy >= 0 ? copy : -readErrno();
    },
    ...execution(table, bindExec, readErrno, raw),
    ...processStartTime(table, bindProcessInfo),
  };
}

/**
 * `processStartTime` where the OS has a use for `proc_pidinfo` (macOS) and it
 * could be bound, else nothing: a failure to bind it loses the start token,
 * never the lock binding itself.
 */
function processStartTime(
  table: PosixTable,
  bind: ((library: string) => ProcessInfoCall) | undefined,
): Pick<Binding, "processStartTime"> {
  const layout = table.processInfo;
  if (layout === undefined || bind === undefined) return {};
  let rawInfo: ProcessInfoCall;
  try {
    rawInfo = loadFirst(table, bind).loaded;
  } catch {
    return {}; // no start token
  }
  const info = new Uint8Array(layout.size);
  const view = new DataView(info.buffer);
  return {
    processStartTime(pid: number): string | undefined {
      info.fill(0);
      const written = rawInfo(pid, layout.flavor, 0, info, layout.size);
      return startTokenFromProcessInfo(layout, view, written, pid, Date.now());
    },
  };
}

/** `exec` where `execvp` could be bound, else nothing (the CLI then says `-F` is not possible). */
function execution(
  table: PosixTable,
  bind: ((library: string) => ExecCall) | undefined,
  readErrno: () => number,
  raw: RawLibc,
): Pick<Binding, "exec"> {
  if (bind === undefined) return {};
  let call: ExecCall;
  try {
    call = loadFirst(table, bind).loaded;
  } catch {
    return {};
  }
  return {
    exec(argv: readonly string[]): number {
      // The runtime may have marked its standard streams close-on-exec (libuv
      // does): a copy made with dup2 is not, so the command keeps them.
      for (let fd = 0; fd <= 2; fd++) {
        const copy = raw.dup(fd);
        if (copy < 0) continue;
        raw.dup2(copy, fd);
        raw.close(copy);
      }
      const strings = argv.map(encodeCString);
      call(strings[0], strings);
      return -readErrno();
    },
  };
}

/**
 * Tries every library and stat-symbol set of a table with `load` until one
 * binds; reports every failure otherwise.
 */
export function loadFirst<T>(
  table: PosixTable,
  load: (library: string, stat: StatSymbols) => T,
): { loaded: T; statVersion: number | undefined } {
  const failures: string[] = [];
  for (const library of table.libraries) {
    for (const stat of table.statSymbols) {
      try {
        return { loaded: load(library, stat), statVersion: stat.version };
      } catch (error) {
        failures.push(`${library} (${stat.fstat}): ${(error as Error).message}`);
      }
    }
  }
  throw new Error(`cannot bind libc: ${failures.join("; ")}`);
}
