/**
 * The descriptors the command gets besides the standard streams: a copy of
 * the locked descriptor, so that the command holds the lock too, at the
 * lowest number free in this process (flock(1) leaves its lock where `open`
 * put it, the lowest free number; a number the shell passed in is never
 * taken).
 *
 * @module
 */

import type { Lock } from "../../mod.ts";
import { ffiBinding } from "../../ffi/runtime.ts";
import { inheritableDescriptor } from "../kernel/lock.ts";

/** A copy of the locked descriptor for the command, and how to close it here. */
export interface LockCopy {
  /** The copy's number: the lowest free one; not close-on-exec. */
  readonly fd: number;
  /** Closes this process's copy (the lock stays with the original). */
  close(): void;
}

/**
 * A copy of `lock`'s descriptor that a command started now inherits, where
 * the lock has an OS descriptor (a kernel lock through FFI); `undefined`
 * where it has none (pidfile, `deno-native`, Windows) or `dup` fails.
 */
export function lockCopy(lock: Lock): LockCopy | undefined {
  const fd = inheritableDescriptor(lock);
  const binding = ffiBinding().binding;
  if (fd === undefined || binding?.dup === undefined) return undefined;
  const copy = binding.dup(fd);
  if (copy < 0) return undefined;
  return { fd: copy, close: () => binding.close(copy) };
}
