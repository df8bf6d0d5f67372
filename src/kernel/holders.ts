/**
 * Who holds a kernel lock, found without taking it (Linux's `/proc/locks`),
 * and the timeout error that names them.
 *
 * @module
 */

import { ffiBinding, os } from "../../ffi/runtime.ts";
import { readSystemText, statPath, SystemFailure } from "../../ffi/node_fs.ts";
import { hostName } from "../../ffi/node_process.ts";
import { readThroughBinding } from "../binding_text.ts";
import { LockTimeoutError } from "../errors.ts";
import { describeHolders } from "../holder_text.ts";
import type { LockHolder } from "../types.ts";

/** glibc's `major()`/`minor()` of a `st_dev`, as /proc/locks prints them. */
function deviceNumbers(dev: number): string {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}`;
}

/** Linux's table of locks as one read sees it: through the file APIs or else the FFI binding. */
function readLocksTable(): string | undefined {
  return readSystemText("/proc/locks") ??
    readThroughBinding(ffiBinding().binding, "/proc/locks", 1 << 22);
}

/** Reads of the table at most, until two in a row agree. */
const TABLE_READS = 5;

/**
 * Linux's table of locks, read until two reads in a row agree: the kernel
 * hands it out a page per `read`, and a table that changes between pages
 * (any busy machine: every Deno process holds a few locks of its own) shows
 * some entries twice and others not at all.
 */
function locksTable(): string | undefined {
  let table = readLocksTable();
  for (let read = 1; read < TABLE_READS && table !== undefined; read++) {
    const again = readLocksTable();
    if (again === table) return table;
    table = again;
  }
  return table;
}

/**
 * The `flock` holders of the file at `path` (Linux), or `undefined` where
 * this cannot be known without taking the lock.
 */
export function kernelHolders(path: string): LockHolder[] | undefined {
  if (os !== "linux") return undefined;
  const status = statPath(path);
  if (status instanceof SystemFailure) return status.code === "ENOENT" ? [] : undefined;
  const table = locksTable();
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

/** The timeout error of a kernel wait, naming the holders where /proc/locks shows them. */
export function kernelTimedOut(path: string, shared: boolean, timeout: number): LockTimeoutError {
  const holders = kernelHolders(path) ?? [];
  return new LockTimeoutError(
    path,
    `timed out after ${timeout} ms waiting for the ${shared ? "shared" : "exclusive"} lock, ${
      describeHolders(holders, "held by another descriptor")
    }`,
    holders,
  );
}
