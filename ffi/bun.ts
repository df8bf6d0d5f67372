/**
 * The Bun binding: libc through `bun:ffi`. Bun's FFI calls are synchronous and
 * block the event loop, which is why every lock call made here is non-blocking.
 *
 * @module
 */

import type { Binding } from "./types.ts";
import type { PosixTable } from "./posix_tables.ts";
import { loadFirst, posixBinding, type RawLibc, variadicPadding } from "./posix.ts";
import { type RawKernel32, windowsBinding } from "./windows.ts";
import { requireModule } from "./require.ts";

/** The part of `bun:ffi` used here, typed locally so other runtimes never need Bun's types. */
export interface BunFfi {
  /** `bun:ffi`'s `dlopen`. */
  dlopen(
    path: string,
    symbols: Record<string, { args: readonly string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown> };
  /** `bun:ffi`'s `toArrayBuffer`. */
  toArrayBuffer(pointer: unknown, byteOffset: number, byteLength: number): ArrayBuffer;
  /** `bun:ffi`'s `ptr`: the address of a typed array's bytes. */
  ptr(view: Uint8Array): number;
}

/**
 * Loads `bun:ffi`, synchronously; only ever called in Bun.
 *
 * @example
 * ```ts ignore
 * const ffi = loadBunFfi();
 * ```
 */
export function loadBunFfi(): BunFfi {
  return requireModule<BunFfi>("bun:ffi");
}

/**
 * Opens libc with `bun:ffi` and returns the binding.
 *
 * @example
 * ```ts ignore
 * import { createBunBinding, loadBunFfi } from "./bun.ts";
 * import { LINUX_X86_64 } from "./posix_tables.ts";
 * const binding = createBunBinding(loadBunFfi(), LINUX_X86_64);
 * ```
 */
export function createBunBinding(ffi: BunFfi, table: PosixTable): Binding {
  const padding = variadicPadding(table).map(() => "i64");
  const { loaded: symbols, statVersion } = loadFirst(table, (library, stat) => {
    const statArgs = stat.version === undefined ? [] : ["i32"];
    const s = ffi.dlopen(library, {
      open: { args: ["ptr", "i32", ...padding, "u32"], returns: "i32" },
      flock: { args: ["i32", "i32"], returns: "i32" },
      [stat.fstat]: { args: [...statArgs, "i32", "ptr"], returns: "i32" },
      [stat.lstat]: { args: [...statArgs, "ptr", "ptr"], returns: "i32" },
      unlink: { args: ["ptr"], returns: "i32" },
      close: { args: ["i32"], returns: "i32" },
      read: { args: ["i32", "ptr", "u64"], returns: "i64" },
      dup: { args: ["i32"], returns: "i32" },
      dup2: { args: ["i32", "i32"], returns: "i32" },
      [table.statfs.symbol]: { args: ["ptr", "ptr"], returns: "i32" },
      geteuid: { args: [], returns: "u32" },
      fcntl: { args: ["i32", "i32", ...padding, "i64"], returns: "i32" },
      sigaction: { args: ["i32", "ptr", "ptr"], returns: "i32" },
      [table.errnoLocation]: { args: [], returns: "ptr" },
    }).symbols;
    return {
      raw: {
        ...s,
        fstat: s[stat.fstat],
        lstat: s[stat.lstat],
        statfs: s[table.statfs.symbol],
      } as unknown as RawLibc,
      errnoLocation: s[table.errnoLocation],
    };
  });
  // errno has a fixed address per thread: map it once, read it by index.
  const errno = new Int32Array(ffi.toArrayBuffer(symbols.errnoLocation(), 0, 4));
  return posixBinding("bun-ffi", table, symbols.raw, statVersion, () => errno[0], (library) => {
    const s = ffi.dlopen(library, {
      proc_pidinfo: { args: ["i32", "i32", "u64", "ptr", "i32"], returns: "i32" },
    }).symbols;
    return (pid, flavor, arg, buffer, size) =>
      s.proc_pidinfo(pid, flavor, BigInt(arg), buffer, size) as number;
  }, (library) => {
    const s = ffi.dlopen(library, { execvp: { args: ["ptr", "ptr"], returns: "i32" } }).symbols;
    return (file, argv) => {
      const pointers = new BigUint64Array(argv.length + 1);
      argv.forEach((arg, i) => {
        pointers[i] = BigInt(ffi.ptr(arg));
      });
      return s.execvp(file, pointers) as number;
    };
  });
}

/**
 * Opens kernel32 with `bun:ffi` and returns the Windows binding. Handles
 * travel as `i64` (returned as number or bigint by `i64_fast`) and are kept
 * as numbers.
 *
 * @example
 * ```ts ignore
 * import { createBunWindowsBinding, loadBunFfi } from "./bun.ts";
 * const binding = createBunWindowsBinding(loadBunFfi());
 * ```
 */
export function createBunWindowsBinding(ffi: BunFfi): Binding {
  const s = ffi.dlopen("kernel32.dll", {
    CreateFileW: { args: ["ptr", "u32", "u32", "ptr", "u32", "u32", "ptr"], returns: "i64_fast" },
    LockFileEx: { args: ["i64", "u32", "u32", "u32", "u32", "ptr"], returns: "i32" },
    UnlockFileEx: { args: ["i64", "u32", "u32", "u32", "ptr"], returns: "i32" },
    GetFileInformationByHandle: { args: ["i64", "ptr"], returns: "i32" },
    GetFileAttributesW: { args: ["ptr"], returns: "u32" },
    DeleteFileW: { args: ["ptr"], returns: "i32" },
    CloseHandle: { args: ["i64"], returns: "i32" },
    GetLastError: { args: [], returns: "u32" },
    GetVolumePathNameW: { args: ["ptr", "ptr", "u32"], returns: "i32" },
    GetVolumeInformationW: {
      args: ["ptr", "ptr", "u32", "ptr", "ptr", "ptr", "ptr", "u32"],
      returns: "i32",
    },
    GetDriveTypeW: { args: ["ptr"], returns: "u32" },
    OpenProcess: { args: ["u32", "i32", "u32"], returns: "i64_fast" },
    GetProcessTimes: { args: ["i64", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  }).symbols;
  const raw = {
    ...s,
    CreateFileW: (...args: unknown[]) => Number(s.CreateFileW(...args)),
    OpenProcess: (...args: unknown[]) => Number(s.OpenProcess(...args)),
  } as unknown as RawKernel32;
  return windowsBinding("bun-ffi", raw);
}
