/**
 * The Deno binding: libc through `Deno.dlopen`. Needs `--allow-ffi` for the
 * libc path.
 *
 * @module
 */

import type { Binding } from "./types.ts";
import type { PosixTable } from "./tables.ts";
import { loadFirst, openPadding, posixBinding, type RawLibc } from "./posix_common.ts";

/**
 * Opens libc with `Deno.dlopen` and returns the binding. Throws when the
 * library cannot be bound (for example without FFI permission).
 *
 * @example
 * ```ts ignore
 * import { createDenoBinding } from "./deno.ts";
 * import { LINUX_X86_64 } from "./tables.ts";
 * const binding = createDenoBinding(LINUX_X86_64);
 * ```
 */
export function createDenoBinding(table: PosixTable): Binding {
  const padding = openPadding(table).map(() => "i64" as const);
  const { loaded: symbols, statVersion } = loadFirst(table, (library, stat) => {
    const statArgs = stat.version === undefined ? [] : ["i32" as const];
    return Deno.dlopen(library, {
      open: { parameters: ["buffer", "i32", ...padding, "u32"], result: "i32" },
      flock: { parameters: ["i32", "i32"], result: "i32" },
      fstat: { name: stat.fstat, parameters: [...statArgs, "i32", "buffer"], result: "i32" },
      lstat: { name: stat.lstat, parameters: [...statArgs, "buffer", "buffer"], result: "i32" },
      unlink: { parameters: ["buffer"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
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
  );
}
