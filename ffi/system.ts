/**
 * The filesystem and process calls of the pidfile backend and of holder
 * inspection, through the `node:` built-ins that Deno, Bun and Node all
 * implement (no FFI: this is what a process without a kernel lock has). Each
 * function makes one call (or one fixed sequence, such as open-read-close) and
 * reports the error code; `src/` decides what it means.
 *
 * @module
 */

import {
  closeSync,
  constants,
  fstatSync,
  futimesSync,
  lstatSync,
  openSync,
  readSync,
  type Stats,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import process from "node:process";
import { setInterval as backgroundInterval } from "node:timers";

/** A failed call: an errno name (`ENOENT`, `EEXIST`, ...) and the original error. */
export class SystemFailure {
  /** Creates a failure from an errno name and the original error. */
  constructor(readonly code: string, readonly cause: unknown) {}
}

/** The parts of a file's status the pidfile backend needs. */
export interface FileStatus {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly kind: "file" | "directory" | "symlink" | "other";
}

/** The head of a file: at most `limit` bytes, and its status. */
export interface FileHead {
  readonly bytes: Uint8Array;
  readonly status: FileStatus;
}

function failure(error: unknown): SystemFailure {
  const record = error as { code?: unknown; name?: unknown };
  if (typeof record?.code === "string") return new SystemFailure(record.code, error);
  // Deno reports a missing permission as NotCapable, without an errno code.
  if (record?.name === "NotCapable" || record?.name === "PermissionDenied") {
    return new SystemFailure("EACCES", error);
  }
  return new SystemFailure("EIO", error);
}

function statusOf(stats: Stats): FileStatus {
  return {
    dev: stats.dev,
    ino: stats.ino,
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    kind: stats.isFile()
      ? "file"
      : stats.isDirectory()
      ? "directory"
      : stats.isSymbolicLink()
      ? "symlink"
      : "other",
  };
}

// O_NOFOLLOW is absent on Windows; O_EXCL alone never follows a link anyway.
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
// A FIFO planted at the lock path must not block the reader until a writer comes.
const NONBLOCK = constants.O_NONBLOCK ?? 0;

/** `open(path, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW, mode)`: a new file's descriptor. */
export function createExclusive(path: string, mode: number): number | SystemFailure {
  try {
    return openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW,
      mode,
    );
  } catch (error) {
    return failure(error);
  }
}

/** Writes all of `bytes` at the start of the file. */
export function writeAll(fd: number, bytes: Uint8Array): 0 | SystemFailure {
  try {
    let written = 0;
    while (written < bytes.length) {
      written += writeSync(fd, bytes, written, bytes.length - written, written);
    }
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** Opens `path` read-only without following a link, reads up to `limit` bytes, closes. */
export function readHead(path: string, limit: number): FileHead | SystemFailure {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | NOFOLLOW | NONBLOCK);
  } catch (error) {
    return failure(error);
  }
  try {
    const status = statusOf(fstatSync(fd));
    if (status.kind !== "file") return { bytes: new Uint8Array(0), status };
    const bytes = new Uint8Array(Math.min(limit, status.size));
    let filled = 0;
    while (filled < bytes.length) {
      const count = readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (count === 0) break;
      filled += count;
    }
    return { bytes: bytes.subarray(0, filled), status };
  } catch (error) {
    return failure(error);
  } finally {
    try {
      closeSync(fd);
    } catch {
      // A read-only descriptor has nothing to lose on close.
    }
  }
}

/** `lstat(path)`. */
export function statPath(path: string): FileStatus | SystemFailure {
  try {
    return statusOf(lstatSync(path));
  } catch (error) {
    return failure(error);
  }
}

/** `fstat(fd)`. */
export function statDescriptor(fd: number): FileStatus | SystemFailure {
  try {
    return statusOf(fstatSync(fd));
  } catch (error) {
    return failure(error);
  }
}

/** `unlink(path)`. */
export function removeFile(path: string): 0 | SystemFailure {
  try {
    unlinkSync(path);
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** Sets the descriptor's access and modification times to `ms` (epoch milliseconds). */
export function touchDescriptor(fd: number, ms: number): 0 | SystemFailure {
  try {
    futimesSync(fd, ms / 1000, ms / 1000);
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** `close(fd)`. */
export function closeDescriptor(fd: number): 0 | SystemFailure {
  try {
    closeSync(fd);
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** A small system file (`/proc/...`) as text, or `undefined` when it cannot be read. */
export function readSystemText(path: string, limit = 1 << 20): string | undefined {
  const head = readHead(path, limit);
  if (head instanceof SystemFailure) return undefined;
  // procfs reports size 0: read it as a stream instead.
  if (head.status.size === 0) return readStream(path, limit);
  return new TextDecoder().decode(head.bytes);
}

function readStream(path: string, limit: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < limit) {
      const chunk = new Uint8Array(Math.min(65536, limit - total));
      const count = readSync(fd, chunk, 0, chunk.length, null);
      if (count === 0) break;
      chunks.push(chunk.subarray(0, count));
      total += count;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return new TextDecoder().decode(all);
  } catch {
    return undefined;
  } finally {
    try {
      closeSync(fd);
    } catch {
      // Nothing to lose on a read-only descriptor.
    }
  }
}

/** This process's id. */
export const processId: number = process.pid;

/** The host's name, or `undefined` when the runtime does not let us read it. */
export function hostName(): string | undefined {
  try {
    return hostname();
  } catch {
    // Deno without --allow-sys: the kernel's copy, where /proc is readable.
    return readSystemText("/proc/sys/kernel/hostname")?.trim() || undefined;
  }
}

/**
 * Signal 0 to `pid`: `"alive"` when it reaches a process (or is refused with
 * EPERM), `"dead"` on ESRCH, `"unknown"` when the runtime does not let us ask.
 */
export function signalZero(pid: number): "alive" | "dead" | "unknown" {
  try {
    process.kill(pid, 0);
    return "alive";
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    if (code === "ESRCH") return "dead";
    if (code === "EPERM") return "alive";
    return "unknown";
  }
}

/** The signals after which a process removes the pidfile locks it holds. */
export type ExitSignal = "SIGINT" | "SIGTERM";

const SIGNAL_NUMBERS: Record<ExitSignal, number> = { SIGINT: 2, SIGTERM: 15 };

/** Calls `handler` once when the process exits normally. */
export function onExit(handler: () => void): void {
  process.on("exit", handler);
}

/** Adds a listener for `signal`. */
export function addSignalListener(signal: ExitSignal, handler: () => void): void {
  process.on(signal, handler);
}

/** Removes a listener for `signal`. */
export function removeSignalListener(signal: ExitSignal, handler: () => void): void {
  process.off(signal, handler);
}

/** How many listeners `signal` has in this process. */
export function signalListeners(signal: ExitSignal): number {
  return process.listenerCount(signal);
}

/**
 * Dies of `signal` as if no listener had been installed: re-raises it, or
 * where the runtime refuses (Deno without --allow-run) exits with 128 + N.
 */
export function dieOfSignal(signal: ExitSignal): void {
  try {
    process.kill(process.pid, signal);
  } catch {
    process.exit(128 + SIGNAL_NUMBERS[signal]);
  }
}

/** Runs `fn` every `ms` on a timer that does not keep the process alive; returns a stop function. */
export function backgroundTimer(fn: () => void, ms: number): () => void {
  const timer = backgroundInterval(fn, ms);
  timer.unref();
  return () => clearInterval(timer);
}
