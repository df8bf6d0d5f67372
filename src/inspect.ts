/**
 * Who holds a lock, found without taking it: a pidfile record is read and
 * judged; a kernel `flock` is looked up in Linux's `/proc/locks`.
 *
 * @module
 */

import { dirname } from "node:path";
import { statPath, SystemFailure } from "../ffi/node_fs.ts";
import { os, runtime } from "../ffi/runtime.ts";
import { FileKind } from "../ffi/types.ts";
import { explainRefusal, lockKindFor } from "./acquisition.ts";
import { LockError } from "./errors.ts";
import { describeHolders } from "./holder_text.ts";
import { kernelHolders } from "./kernel/holders.ts";
import { filesystemOf } from "./filesystems.ts";
import { lockOptions, lockPath, type ValidOptions } from "./options.ts";
import { type Found, judge, readLockFile } from "./pidfile/judge.ts";
import { resolveBackend } from "./probe.ts";
import type { LockStatus } from "./types.ts";

/**
 * Everything `inspect` reports about `path`. In pidfile mode any file is a
 * holding (an empty one is being written); for kernel locks an empty file is
 * the normal, free state and the holders come from `/proc/locks`.
 */
export function inspectLock(path: unknown, options: unknown): LockStatus {
  const absolute = lockPath(path);
  const valid = lockOptions(options);
  const backend = resolveBackend(valid.backend);
  const status = holdingOf(absolute, valid, lockKindFor(absolute, backend) === "pidfile");
  const { fsType, network } = filesystemOf(absolute, backend.binding);
  return { ...status, fsType, network };
}

function holdingOf(
  absolute: string,
  valid: ValidOptions,
  pidfile: boolean,
): Omit<LockStatus, "fsType" | "network"> {
  let found: Found | undefined;
  try {
    const seen = statPath(absolute);
    // A directory is a lock path like a file for kernel locks: its holders are in /proc/locks.
    found = !pidfile && !(seen instanceof SystemFailure) && seen.kind === FileKind.DIRECTORY
      ? undefined
      : readLockFile(absolute);
    if (found === undefined && seen instanceof SystemFailure) {
      // No lock file is free; no directory for it is a mistyped path.
      const parent = statPath(dirname(absolute));
      if (parent instanceof SystemFailure) {
        throw new LockError({
          code: parent.code === "ENOENT" ? "ENOENT" : parent.code,
          path: absolute,
          cause: parent.cause,
          detail: parent.code === "ENOENT"
            ? "the directory of the lock file does not exist"
            : undefined,
        });
      }
      return {
        path: absolute,
        state: "free",
        holders: [],
        detail: "the lock file does not exist: free",
      };
    }
  } catch (error) {
    // Read through the runtime's file API: in Deno, its permissions apply.
    throw error instanceof LockError ? explainRefusal(error, true, false) : error;
  }
  if (found !== undefined && (found.record !== undefined || pidfile)) {
    const verdict = judge(found, valid.staleMs);
    const holders = verdict.holder === undefined ? [] : [verdict.holder];
    if (verdict.notARecord) {
      return { path: absolute, state: "unknown", holders, detail: verdict.reason };
    }
    return {
      path: absolute,
      state: verdict.stale ? "stale" : "held",
      holders,
      detail: `${describeHolders(holders, "held")}: ${verdict.reason}${
        verdict.stale ? "; the next acquire reclaims it" : ""
      }`,
    };
  }
  const holders = kernelHolders(absolute);
  if (holders === undefined) {
    return {
      path: absolute,
      state: "unknown",
      holders: [],
      detail: os === "linux"
        ? `/proc/locks is not readable here, so a kernel lock cannot be seen without taking it${
          runtime === "deno"
            ? " (Deno opens /proc only under --allow-all; with --allow-ffi it reads /proc/locks through FFI)"
            : ""
        }`
        : `a kernel lock cannot be seen on ${os} without taking it`,
    };
  }
  if (holders.length > 0) {
    return { path: absolute, state: "held", holders, detail: describeHolders(holders, "held") };
  }
  return {
    path: absolute,
    state: "free",
    holders: [],
    detail: "no process holds a lock on the file",
  };
}
