/**
 * `-F` (`--no-fork`): the command replaces `filelock` through `execvp`, and
 * keeps the lock.
 *
 * @module
 */

import type { Lock } from "../../mod.ts";
import { ffiBinding } from "../../ffi/runtime.ts";
import { lockCopy } from "./descriptors.ts";
import { canExec, prepareForExec } from "./exec_prep.ts";
import type { Options } from "./args.ts";
import { EX_OSERR, EX_UNAVAILABLE } from "./exit_codes.ts";
import { type CliOutput, strerror } from "./report.ts";

/**
 * `-F`: replaces this process with the command, which keeps the lock (a
 * duplicate of the locked descriptor survives `exec`; a pidfile record names
 * the same pid) and the `inherited` descriptors. Returns only when that is
 * impossible or `exec` fails.
 */
export async function execInPlace(
  lock: Lock,
  argv: string[],
  inherited: readonly number[],
  options: Options,
  out: CliOutput,
): Promise<number> {
  const binding = ffiBinding().binding;
  if (canExec(binding)) {
    // A copy of the locked descriptor, not close-on-exec, at the lowest free number.
    const copy = lockCopy(lock);
    if (copy !== undefined || lock.backend === "pidfile") {
      if (options.verbose) out.stdout(`filelock: executing ${argv[0]}\n`);
      const undo = prepareForExec(
        binding,
        copy === undefined ? inherited : [...inherited, copy.fd],
      );
      const failed = binding.exec(argv);
      undo();
      copy?.close();
      const code = binding.errnoName(-failed);
      out.stderr(`filelock: failed to execute ${argv[0]}: ${strerror(code)}\n`);
      await lock.release();
      return code === "ENOMEM" ? EX_OSERR : EX_UNAVAILABLE;
    }
  }
  await lock.release();
  out.stderr(
    `filelock: -F (--no-fork) needs the FFI backend with ${
      lock.backend === "pidfile" ? "" : "its own "
    }descriptors to keep the lock across exec; this process locked with ${lock.backend}${
      binding ? "" : ` (${ffiBinding().reason})`
    }\n`,
  );
  return EX_UNAVAILABLE;
}
