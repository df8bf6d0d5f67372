/**
 * The Deno binding: libc through `Deno.dlopen`. Needs `--allow-ffi` for the
 * libc path.
 *
 * @module
 */

import type { Binding } from "./types.ts";
import type { PosixTable } from "./posix_tables.ts";
import { loadFirst, posixBinding, type RawLibc, variadicPadding } from "./posix.ts";
import { type RawKernel32, windowsBinding } from "./windows.ts";

/**
 * Opens libc with `Deno.dlopen` and returns the binding. Throws when the
 * library cannot be bound (for example without FFI permission).
 *
 * @example
 * ```ts ignore
 * import { createDenoBinding } from "./deno.ts";
 * import { LINUX_X86_64 } from "./posix_tables.ts";
 * const binding = createDenoBinding(LINUX_X86_64);
 * ```
 */
export function createDenoBinding(table: PosixTable): Binding {
  const padding = variadicPadding(table).map(() => "i64" as const);
  const { loaded: symbols, statVersion } = loadFirst(table, (library, stat) => {
    const statArgs = stat.version === undefined ? [] : ["i32" as const];
    return Deno.dlopen(library, {
      open: { parameters: ["buffer", "i32", ...padding, "u32"], result: "i32" },
      flock: { parameters: ["i32", "i32"], result: "i32" },
      fstat: { name: stat.fstat, parameters: [...statArgs, "i32", "buffer"], result: "i32" },
      lstat: { name: stat.lstat, parameters: [...statArgs, "buffer", "buffer"], result: "i32" },
      unlink: { parameters: ["buffer"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
      dup: { parameters: ["i32"], result: "i32" },
      dup2: { parameters: ["i32", "i32"], result: "i32" },
      statfs: { name: table.statfs.symbol, parameters: ["buffer", "buffer"], result: "i32" },
      geteuid: { parameters: [], result: "u32" },
      fcntl: { parameters: ["i32", "i32", ...padding, "i64"], result: "i32" },
      sigaction: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
      errnoLocation: { name: table.errnoLocation, parameters: [], result: "pointer" },
    }).symbols;
  });
  const errnoPointer = symbols.errnoLocation();
  if (errnoPointer === null) throw new Error("errno location is NULL");
  // errno has a fixed address per thread: make the view once, read it per call.
  const errnoView = new Deno.UnsafePointerView(errnoPointer);
  return posixBinding(
    "deno-ffi",
    table,
    symbols as unknown as RawLibc,
    statVersion,
    () => errnoView.getInt32(0),
    (library) => {
      const s = Deno.dlopen(library, {
        proc_pidinfo: { parameters: ["i32", "i32", "u64", "buffer", "i32"], result: "i32" },
      }).symbols;
      return (pid, flavor, arg, buffer, size) =>
        s.proc_pidinfo(pid, flavor, BigInt(arg), buffer, size);
    },
    (library) => {
      const s = Deno.dlopen(library, {
        execvp: { parameters: ["buffer", "buffer"], result: "i32" },
      }).symbols;
      return (file, argv) => {
        const pointers = new BigUint64Array(argv.length + 1);
        argv.forEach((arg, i) => {
          pointers[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(arg)));
        });
        return s.execvp(file, pointers);
      };
    },
  );
}

/**
 * Opens kernel32 with `Deno.dlopen` and returns the Windows binding. Handles
 * come back as `isize` (number or bigint) and are kept as numbers.
 *
 * @example
 * ```ts ignore
 * import { createDenoWindowsBinding } from "./deno.ts";
 * const binding = createDenoWindowsBinding();
 * ```
 */
export function createDenoWindowsBinding(): Binding {
  const s = Deno.dlopen("kernel32.dll", {
    CreateFileW: {
      parameters: ["buffer", "u32", "u32", "pointer", "u32", "u32", "pointer"],
      result: "isize",
    },
    LockFileEx: { parameters: ["isize", "u32", "u32", "u32", "u32", "buffer"], result: "i32" },
    UnlockFileEx: { parameters: ["isize", "u32", "u32", "u32", "buffer"], result: "i32" },
    GetFileInformationByHandle: { parameters: ["isize", "buffer"], result: "i32" },
    GetFileAttributesW: { parameters: ["buffer"], result: "u32" },
    DeleteFileW: { parameters: ["buffer"], result: "i32" },
    CloseHandle: { parameters: ["isize"], result: "i32" },
    GetLastError: { parameters: [], result: "u32" },
    GetVolumePathNameW: { parameters: ["buffer", "buffer", "u32"], result: "i32" },
    GetVolumeInformationW: {
      parameters: ["buffer", "pointer", "u32", "pointer", "pointer", "pointer", "buffer", "u32"],
      result: "i32",
    },
    GetDriveTypeW: { parameters: ["buffer"], result: "u32" },
    OpenProcess: { parameters: ["u32", "i32", "u32"], result: "isize" },
    GetProcessTimes: {
      parameters: ["isize", "buffer", "buffer", "buffer", "buffer"],
      result: "i32",
    },
  }).symbols;
  const raw: RawKernel32 = {
    CreateFileW: (path, access, share, _security, disposition, flags, _template) =>
      Number(
        s.CreateFileW(path as Uint8Array, access, share, null, disposition, flags, null),
      ),
    LockFileEx: (handle, flags, reserved, low, high, overlapped) =>
      s.LockFileEx(BigInt(handle), flags, reserved, low, high, overlapped),
    UnlockFileEx: (handle, reserved, low, high, overlapped) =>
      s.UnlockFileEx(BigInt(handle), reserved, low, high, overlapped),
    GetFileInformationByHandle: (handle, info) =>
      s.GetFileInformationByHandle(BigInt(handle), info),
    GetFileAttributesW: (path) => s.GetFileAttributesW(path as Uint8Array),
    DeleteFileW: (path) => s.DeleteFileW(path as Uint8Array),
    CloseHandle: (handle) => s.CloseHandle(BigInt(handle)),
    GetLastError: () => s.GetLastError(),
    GetVolumePathNameW: (path, root, length) =>
      s.GetVolumePathNameW(path as Uint8Array, root, length),
    GetVolumeInformationW: (root, _n, _nl, _s, _m, _f, name, length) =>
      s.GetVolumeInformationW(root, null, 0, null, null, null, name, length),
    GetDriveTypeW: (root) => s.GetDriveTypeW(root),
    OpenProcess: (access, inherit, pid) => Number(s.OpenProcess(access, inherit, pid)),
    GetProcessTimes: (process, creation, exit, kernel, user) =>
      s.GetProcessTimes(BigInt(process), creation, exit, kernel, user),
  };
  return windowsBinding("deno-ffi", raw);
}
