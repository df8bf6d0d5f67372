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
  FilesystemInfo,
} from "./types.ts";
import type { PosixTable, StatSymbols } from "./posix_tables.ts";
import { encodeCString, readStat, readStatfs, startTokenFromProcessInfo } from "./posix_structs.ts";
import { type ExecCall, execution } from "./posix_exec.ts";

export { startTokenFromProcessInfo } from "./posix_structs.ts";
export type { ExecCall } from "./posix_exec.ts";

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

/** The dummy register arguments that put `open`'s mode (and `fcntl`'s argument) where `va_arg` reads it. */
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
  /** `fcntl(fd, command, ...padding, argument)`: variadic, padded as `open` is. */
  fcntl?(fd: number, command: number, ...argumentAndPadding: number[]): number;
  /** `sigaction(signal, action, old)`, either struct `null`. */
  sigaction?(signal: number, action: Uint8Array | null, old: Uint8Array | null): number;
}

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
    ...descriptorFlags(raw, pad, readErrno),
    ...execution(
      bindExec === undefined ? undefined : loadOrNothing(table, bindExec),
      readErrno,
      raw,
      table,
    ),
    ...processStartTime(table, bindProcessInfo),
  };
}

/** `fcntl` where the runtime's binding bound it. */
function descriptorFlags(
  raw: RawLibc,
  pad: readonly number[],
  readErrno: () => number,
): Pick<Binding, "fcntl"> {
  const rawFcntl = raw.fcntl;
  if (rawFcntl === undefined) return {};
  return {
    fcntl(fd: number, command: number, argument: number): number {
      // -1 is failure; other negative results (F_GETOWN's process group) are answers.
      const result = pad.length === 0
        ? rawFcntl(fd, command, argument)
        : rawFcntl(fd, command, ...pad, argument);
      return result === -1 ? -readErrno() : result;
    },
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

/** What `loadFirst` binds, or `undefined` where nothing binds: an optional call is left out. */
function loadOrNothing<T>(table: PosixTable, bind: (library: string) => T): T | undefined {
  try {
    return loadFirst(table, bind).loaded;
  } catch {
    return undefined;
  }
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
