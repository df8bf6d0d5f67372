/**
 * Descriptor mode: lock (or unlock) a descriptor the shell opened, as
 * `exec 200>lock; flock 200` does; the shell keeps the lock.
 *
 * @module
 */

import { LockError, LockTimeoutError } from "../../mod.ts";
import { ffiBinding } from "../../ffi/runtime.ts";
import type { Binding } from "../../ffi/types.ts";
import { DescriptorLocking, unlockDescriptor } from "../kernel/descriptor.ts";
import { resolveBackend, type ResolvedBackend } from "../probe.ts";
import { settle, wait, waitSync } from "../wait.ts";
import type { Options } from "./args.ts";
import { EX_DATAERR, EX_OSERR, EX_UNAVAILABLE } from "./exit_codes.ts";
import { conflict, timedOut, timeoutMs, tookLine } from "./output.ts";
import { type CliOutput, strerror } from "./report.ts";

/**
 * The binding that can lock a descriptor the shell passed in, or why there is
 * none. The request is resolved as for a lock file (`--backend`, else
 * `FILELOCK_BACKEND`, else auto), so that the variable and the option agree:
 * only the FFI backend can `flock` a descriptor it did not open.
 */
function descriptorBinding(options: Options): Binding | string {
  let resolved: ResolvedBackend;
  try {
    resolved = resolveBackend(options.backend);
  } catch (error) {
    if (error instanceof LockError) return error.message; // asked for, and not available here
    throw error;
  }
  if (resolved.binding?.osDescriptors) return resolved.binding;
  if (!resolved.mayFallBack) {
    const request = resolved.result.backend === "deno-native" ? "native" : resolved.result.backend;
    return `the ${request} backend cannot lock a descriptor it did not open`;
  }
  return `locking a descriptor needs the FFI backend (flock on the shell's own descriptor), and ${ffiBinding().reason}`;
}

/** Descriptor mode: lock (or unlock) descriptor N, as `flock N` does; the shell keeps the lock. */
export async function lockDescriptor(options: Options, out: CliOutput): Promise<number> {
  const fd = options.descriptor!;
  const binding = descriptorBinding(options);
  if (typeof binding === "string") {
    out.stderr(`filelock: ${binding}\n`);
    return EX_UNAVAILABLE;
  }
  const fail = (code: string) => {
    out.stderr(`filelock: ${fd}: ${strerror(code)}\n`);
    return code === "ENOLCK" || code === "ENOMEM" ? EX_OSERR : EX_DATAERR;
  };
  if (options.kind === "unlock") {
    const result = unlockDescriptor(binding, fd);
    return result === 0 ? 0 : fail(binding.errnoName(-result));
  }
  const started = performance.now();
  const timeout = timeoutMs(options);
  const locking = new DescriptorLocking(binding, fd, options.kind === "shared", timeout);
  try {
    if (timeout === 0) {
      if (settle(locking, undefined) === undefined) {
        return conflict(options, out, `descriptor ${fd}`, "");
      }
    } else if (timeout === Infinity) {
      waitSync(locking, Infinity); // in the kernel, as flock(1) waits
    } else {
      await wait(locking, timeout, undefined);
    }
  } catch (error) {
    if (error instanceof LockTimeoutError) return timedOut(options, out, `descriptor ${fd}`, "");
    if (error instanceof LockError) return fail(error.code);
    throw error;
  }
  tookLine(options, out, started);
  return 0;
}
