/**
 * The descriptors the command gets besides the standard streams, as it would
 * under flock(1), whose command inherits everything flock(1) inherited:
 *
 * - those this process inherited, each as itself (`exec 9>log; filelock L cmd`
 *   leaves `cmd` writing to 9, and `3>out` to 3). Deno leaves them as they
 *   came, and its command inherits them; Node and Bun mark them close-on-exec
 *   when they start, among their own, so they are told apart from the
 *   runtime's own machinery (epoll, eventfd and the like, a pipe with both
 *   ends here) and passed on explicitly;
 * - a copy of the locked descriptor, so that the command holds the lock too,
 *   at the lowest number free in this process (flock(1) leaves its lock where
 *   `open` put it, the lowest free number): never one the shell passed in.
 *
 * @module
 */

import type { Lock } from "../../mod.ts";
import { type OpenDescriptor, openDescriptors } from "../../ffi/open_descriptors.ts";
import { ffiBinding, runtime, type RuntimeName } from "../../ffi/runtime.ts";
import { inheritableDescriptor } from "../kernel/lock.ts";

/**
 * Which descriptors the runtime marks close-on-exec when it starts, having
 * inherited them: none (Deno); every one above 2 (Bun); or, as libuv's
 * `uv_disable_stdio_inheritance` does (Node), 0 to 15 and on from 16 to the
 * first number that was not open.
 */
export type InheritedMarking = "none" | "all" | "libuv";

const MARKING: Readonly<Record<RuntimeName, InheritedMarking>> = {
  deno: "none",
  bun: "all",
  node: "libuv",
};

/**
 * Which of `open` (this process's descriptors) it inherited, above 2: every
 * one that is not close-on-exec (a runtime opens its own close-on-exec); and
 * those close-on-exec ones the runtime may have marked (see
 * {@linkcode InheritedMarking}) but for its own machinery: anonymous inodes
 * (epoll, eventfd, signalfd, timerfd, inotify, pidfd) and pipes with a
 * reading and a writing end both open here (an event loop's wake-ups). A
 * runtime's own descriptors take numbers that were free when it started, so
 * the first of them at 16 or above ends libuv's run. A file, a socket, a
 * terminal or a pipe to another process is passed on; so would be, in Bun,
 * one the runtime opened alike (none is known): harmless to the command.
 */
export function inheritedAmong(
  open: readonly OpenDescriptor[],
  marking: InheritedMarking,
): number[] {
  const pipeEnds = new Map<string, Set<OpenDescriptor["access"]>>();
  for (const { target, access } of open) {
    if (!target.startsWith("pipe:")) continue;
    const ends = pipeEnds.get(target) ?? new Set();
    ends.add(access);
    pipeEnds.set(target, ends);
  }
  const runtimeOwn = ({ target }: OpenDescriptor) => {
    if (target.startsWith("anon_inode:")) return true;
    const ends = pipeEnds.get(target);
    return ends !== undefined && ends.has("read") && (ends.has("write") || ends.has("read-write"));
  };
  let markedBelow = marking === "none" ? 0 : Infinity;
  if (marking === "libuv") {
    const byNumber = new Map(open.map((descriptor) => [descriptor.fd, descriptor]));
    markedBelow = 16;
    for (let next = byNumber.get(markedBelow); next !== undefined && !runtimeOwn(next);) {
      next = byNumber.get(++markedBelow);
    }
  }
  return open
    .filter((descriptor) =>
      descriptor.fd > 2 && (!descriptor.closeOnExec ||
        descriptor.fd < markedBelow && !runtimeOwn(descriptor))
    )
    .map(({ fd }) => fd)
    .sort((a, b) => a - b);
}

/**
 * The descriptors above 2 this process inherited and its runtime would not
 * pass on by itself (see the module's documentation); to be read before this
 * process opens anything of its own (the lock). Empty in Deno, and where
 * the OS has no `/proc/self/fd`.
 */
export function inheritedToPass(): number[] {
  const marking = MARKING[runtime];
  if (marking === "none") return [];
  const open = openDescriptors();
  return open === undefined ? [] : inheritedAmong(open, marking);
}

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
