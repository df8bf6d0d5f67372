/**
 * The process calls of the POSIX binding that `-F` needs: `execvp(3)` (how
 * each runtime's FFI calls it) and `sigaction(2)`. Each makes one call and
 * reports errno; what to change before `exec` is decided in `src/cli/`.
 *
 * @module
 */

import type { Binding } from "./types.ts";
import type { PosixTable } from "./posix_tables.ts";
import type { RawLibc } from "./posix.ts";
import { encodeCString } from "./posix_structs.ts";

/**
 * `execvp(file, argv)` as a runtime's FFI can call it: given the C strings,
 * it builds the NULL-terminated pointer array (how is the runtime's own) and
 * returns `execvp`'s -1 on failure.
 */
export type ExecCall = (file: Uint8Array, argv: readonly Uint8Array[]) => number;

/**
 * `exec` where `execvp` could be bound, and `sigaction` where the runtime's
 * binding bound it; nothing otherwise (the CLI then says `-F` is not possible).
 */
export function execution(
  call: ExecCall | undefined,
  readErrno: () => number,
  raw: RawLibc,
  table: PosixTable,
): Pick<Binding, "exec" | "sigaction" | "posixConstants"> {
  return {
    posixConstants: table.posixConstants,
    ...signals(raw, readErrno, table),
    ...(call === undefined ? {} : {
      exec(argv: readonly string[]): number {
        const strings = argv.map(encodeCString);
        call(strings[0], strings);
        return -readErrno();
      },
    }),
  };
}

/** `sigaction` with a `SIG_DFL`/`SIG_IGN` handler (or none), answering the handler it had. */
function signals(
  raw: RawLibc,
  readErrno: () => number,
  table: PosixTable,
): Pick<Binding, "sigaction"> {
  const rawSigaction = raw.sigaction;
  if (rawSigaction === undefined) return {};
  const { size, handlerOffset } = table.sigaction;
  const action = new Uint8Array(size);
  const actionView = new DataView(action.buffer);
  const old = new Uint8Array(size);
  const oldView = new DataView(old.buffer);
  return {
    sigaction(signal: number, handler?: number): number {
      if (handler !== undefined) {
        action.fill(0); // an empty mask, no flags
        actionView.setBigUint64(handlerOffset, BigInt(handler), true);
      }
      if (rawSigaction(signal, handler === undefined ? null : action, old) !== 0) {
        return -readErrno();
      }
      return Number(oldView.getBigUint64(handlerOffset, true));
    },
  };
}
