/**
 * Who holds a lock, found without taking it: a pidfile record is read and
 * judged; a kernel `flock` is looked up in Linux's `/proc/locks`.
 *
 * @module
 */

import { os } from "../ffi/runtime.ts";
import { hostName, readSystemText, statPath, SystemFailure } from "../ffi/system.ts";
import { describeHolders } from "./holder.ts";
import { judge, readLockFile } from "./pidfile.ts";
import type { LockHolder, LockStatus } from "./types.ts";

/** glibc's `major()`/`minor()` of a `st_dev`, as /proc/locks prints them. */
function deviceNumbers(dev: number): string {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}`;
}

/**
 * The `flock` holders of the file at `path` (Linux), or `undefined` where
 * this cannot be known without taking the lock.
 */
export function kernelHolders(path: string): LockHolder[] | undefined {
  if (os !== "linux") return undefined;
  const status = statPath(path);
  if (status instanceof SystemFailure) return status.code === "ENOENT" ? [] : undefined;
  const table = readSystemText("/proc/locks");
  if (table === undefined) return undefined;
  const wanted = `${deviceNumbers(status.dev)}:${status.ino}`;
  const host = hostName();
  const holders: LockHolder[] = [];
  for (const line of table.split("\n")) {
    // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; waiters have "->" after the number.
    const fields = line.trim().split(/\s+/);
    if (fields[1] !== "FLOCK" || fields[5] !== wanted) continue;
    const pid = Number(fields[4]);
    if (!Number.isSafeInteger(pid) || pid <= 0) continue;
    holders.push({
      backend: "flock",
      pid,
      ...(host === undefined ? {} : { hostname: host }),
      shared: fields[3] === "READ",
    });
  }
  return holders;
}

/**
 * Everything `inspect` reports about `path` (absolute). `pidfile` says which
 * mode the caller locks with: in pidfile mode any file is a holding (an empty
 * one is being written); for kernel locks an empty file is the normal, free
 * state and the holders come from `/proc/locks`.
 */
export function inspectPath(path: string, pidfile: boolean, staleMs: number): LockStatus {
  const found = readLockFile(path);
  if (found === undefined) {
    return { path, state: "free", holders: [], detail: "the lock file does not exist: free" };
  }
  if (found.record !== undefined || pidfile) {
    const verdict = judge(found, staleMs);
    const holders = verdict.holder === undefined ? [] : [verdict.holder];
    return {
      path,
      state: verdict.stale ? "stale" : "held",
      holders,
      detail: `${describeHolders(holders, "held")}: ${verdict.reason}${
        verdict.stale ? "; the next acquire reclaims it" : ""
      }`,
    };
  }
  const holders = kernelHolders(path);
  if (holders === undefined) {
    return {
      path,
      state: "unknown",
      holders: [],
      detail: os === "linux"
        ? "/proc/locks is not readable here, so a kernel lock cannot be seen without taking it"
        : `a kernel lock cannot be seen on ${os} without taking it`,
    };
  }
  if (holders.length > 0) {
    return { path, state: "held", holders, detail: describeHolders(holders, "held") };
  }
  return { path, state: "free", holders: [], detail: "no process holds a lock on the file" };
}
