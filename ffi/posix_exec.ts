/**
 * `execvp(3)` for the POSIX binding: how each runtime's FFI calls it, and the
 * binding's `exec`, where it could be bound.
 *
 * @module
 */

import type { Binding } from "./types.ts";
import type { RawLibc } from "./posix.ts";
import { encodeCString } from "./posix_structs.ts";

/**
 * `execvp(file, argv)` as a runtime's FFI can call it: given the C strings,
 * it builds the NULL-terminated pointer array (how is the runtime's own) and
 * returns `execvp`'s -1 on failure.
 */
export type ExecCall = (file: Uint8Array, argv: readonly Uint8Array[]) => number;

/** `exec` where `execvp` could be bound, else nothing (the CLI then says `-F` is not possible). */
export function execution(
  call: ExecCall | undefined,
  readErrno: () => number,
  raw: RawLibc,
): Pick<Binding, "exec"> {
  if (call === undefined) return {};
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
