/**
 * The Node binding: libc through koffi, loaded only in Node, on first use, so
 * that Deno and Bun users never load it. Every call is synchronous on the
 * calling thread: koffi's async calls run on libuv's small thread pool, where
 * a waiting lock must never be parked.
 *
 * @module
 */

import type koffiModule from "koffi";
import { requireModule } from "./require.ts";
import type { Binding } from "./types.ts";
import type { PosixTable } from "./posix_tables.ts";
import {
  loadFirst,
  posixBinding,
  type ProcessInfoCall,
  type RawLibc,
  variadicPadding,
} from "./posix.ts";
import { type RawKernel32, windowsBinding } from "./windows.ts";

/** The koffi module. */
export type Koffi = typeof koffiModule;

/**
 * Loads koffi, synchronously (it is CommonJS); only ever called in Node.
 *
 * @example
 * ```ts ignore
 * const koffi = loadKoffi();
 * ```
 */
export function loadKoffi(): Koffi {
  return requireModule<Koffi>("koffi");
}

/**
 * Opens libc with koffi and returns the binding.
 *
 * @example
 * ```ts ignore
 * import { createNodeBinding } from "./node.ts";
 * import { LINUX_X86_64 } from "./posix_tables.ts";
 * const binding = createNodeBinding(loadKoffi(), LINUX_X86_64);
 * ```
 */
export function createNodeBinding(koffi: Koffi, table: PosixTable): Binding {
  const padding = variadicPadding(table).map(() => "int64_t");
  const { loaded: raw, statVersion } = loadFirst(table, (library, stat) => {
    const statArgs = stat.version === undefined ? [] : ["int"];
    const lib = koffi.load(library);
    const fn = (name: string, args: string[]) => lib.func(name, "int", args);
    return {
      open: fn("open", ["const void *", "int", ...padding, "uint32_t"]),
      flock: fn("flock", ["int", "int"]),
      fstat: fn(stat.fstat, [...statArgs, "int", "void *"]),
      lstat: fn(stat.lstat, [...statArgs, "const void *", "void *"]),
      unlink: fn("unlink", ["const void *"]),
      close: fn("close", ["int"]),
      read: lib.func("read", "intptr_t", ["int", "void *", "size_t"]),
      dup: fn("dup", ["int"]),
      dup2: fn("dup2", ["int", "int"]),
      statfs: fn(table.statfs.symbol, ["const void *", "void *"]),
      geteuid: lib.func("geteuid", "uint32_t", []),
      fcntl: fn("fcntl", ["int", "int", ...padding, "int64_t"]),
      sigaction: fn("sigaction", ["int", "const void *", "void *"]),
    } as unknown as RawLibc;
  });
  return posixBinding(
    "node-koffi",
    table,
    raw,
    statVersion,
    () => koffi.errno() as number,
    (library) =>
      koffi.load(library).func("proc_pidinfo", "int", [
        "int",
        "int",
        "uint64_t",
        "void *",
        "int",
      ]) as ProcessInfoCall,
    (library) => {
      const execvp = koffi.load(library).func("int execvp(const void *file, void **argv)");
      return (file, argv) => execvp(file, [...argv, null]) as number;
    },
  );
}

/**
 * Opens kernel32 with koffi and returns the Windows binding.
 *
 * @example
 * ```ts ignore
 * import { createNodeWindowsBinding } from "./node.ts";
 * const binding = createNodeWindowsBinding(loadKoffi());
 * ```
 */
export function createNodeWindowsBinding(koffi: Koffi): Binding {
  const kernel32 = koffi.load("kernel32.dll");
  const fn = (prototype: string) => kernel32.func(prototype);
  const raw = {
    CreateFileW: fn(
      "intptr_t __stdcall CreateFileW(const void *path, uint32_t access, uint32_t share, void *security, uint32_t disposition, uint32_t flags, void *template)",
    ),
    LockFileEx: fn(
      "int __stdcall LockFileEx(intptr_t handle, uint32_t flags, uint32_t reserved, uint32_t lengthLow, uint32_t lengthHigh, void *overlapped)",
    ),
    UnlockFileEx: fn(
      "int __stdcall UnlockFileEx(intptr_t handle, uint32_t reserved, uint32_t lengthLow, uint32_t lengthHigh, void *overlapped)",
    ),
    GetFileInformationByHandle: fn(
      "int __stdcall GetFileInformationByHandle(intptr_t handle, void *info)",
    ),
    GetFileAttributesW: fn("uint32_t __stdcall GetFileAttributesW(const void *path)"),
    DeleteFileW: fn("int __stdcall DeleteFileW(const void *path)"),
    CloseHandle: fn("int __stdcall CloseHandle(intptr_t handle)"),
    GetLastError: fn("uint32_t __stdcall GetLastError()"),
    GetVolumePathNameW: fn(
      "int __stdcall GetVolumePathNameW(const void *path, void *root, uint32_t length)",
    ),
    GetVolumeInformationW: fn(
      "int __stdcall GetVolumeInformationW(const void *root, void *volumeName, uint32_t volumeNameLength, void *serial, void *maximumComponentLength, void *flags, void *fileSystemName, uint32_t fileSystemNameLength)",
    ),
    GetDriveTypeW: fn("uint32_t __stdcall GetDriveTypeW(const void *root)"),
    OpenProcess: fn(
      "intptr_t __stdcall OpenProcess(uint32_t access, int inherit, uint32_t pid)",
    ),
    GetProcessTimes: fn(
      "int __stdcall GetProcessTimes(intptr_t process, void *creation, void *exit, void *kernel, void *user)",
    ),
  } as unknown as RawKernel32;
  return windowsBinding("node-koffi", raw);
}
