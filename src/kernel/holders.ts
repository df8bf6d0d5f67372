/**
 * Who holds a kernel lock, found without taking it (Linux's `/proc/locks`),
 * and the timeout error that names them.
 *
 * @module
 */

import { ffiBinding, os } from "../../ffi/runtime.ts";
import { readSystemText, statPath, SystemFailure } from "../../ffi/node_fs.ts";
import { hostName } from "../../ffi/node_process.ts";
import type { Binding } from "../../ffi/types.ts";
import { LockTimeoutError } from "../errors.ts";
import { describeHolders } from "../holder_text.ts";
import type { LockHolder } from "../types.ts";

/** glibc's `major()`/`minor()` of a `st_dev`, as /proc/locks prints them. */
function deviceNumbers(dev: number): string {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}`;
}

/**
 * A /proc file through the FFI binding's own `open`/`read`/`close`: for Deno,
 * which refuses /proc to its file APIs without `--allow-all`, while a process
 * with FFI permission may read it anyway.
 */
function readThroughBinding(binding: Binding, path: string): string | undefined {
  const read = binding.read;
  if (read === undefined) return undefined;
  const c = binding.constants;
  const fd = binding.open(binding.encodePath(path), c.O_RDONLY | c.O_CLOEXEC | c.O_NONBLOCK, 0);
  if (fd < 0) return undefined;
  try {
    let text = "";
    const decoder = new TextDecoder();
    for (let total = 0; total < 1 << 22;) {
      const chunk = new Uint8Array(65536);
      const count = read.call(binding, fd, chunk);
      if (count <= 0) break;
      text += decoder.decode(chunk.subarray(0, count), { stream: true });
      total += count;
    }
    return text + decoder.decode();
  } finally {
    binding.close(fd);
  }
}

/** Linux's table of locks, through the file APIs or else the FFI binding. */
function locksTable(): string | undefined {
  const table = readSystemText("/proc/locks");
  if (table !== undefined) return table;
  const binding = ffiBinding().binding;
  return binding === undefined ? undefined : readThroughBinding(binding, "/proc/locks");
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
