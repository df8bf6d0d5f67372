/**
 * The file calls of the pidfile backend and of holder inspection, through
 * `node:fs`, which Deno, Bun and Node all implement (no FFI: this is what a
 * process without a kernel lock has). Each function makes one call (or one
 * fixed sequence, such as open-read-close) and reports the errno name;
 * `src/` decides what it means.
 *
 * @module
 */

import type * as NodeFs from "node:fs";
import { builtin } from "./builtins.ts";
import { FileKind } from "./types.ts";
import { thrownErrnoName } from "./thrown.ts";

/** A failed call: an errno name (`ENOENT`, `EEXIST`, ...) and the original error. */
export class SystemFailure {
  /** The errno name. */
  readonly code: string;
  /** The error the runtime threw. */
  readonly cause: unknown;

  /** Creates a failure from an errno name and the original error. */
  constructor(code: string, cause: unknown) {
    this.code = code;
    this.cause = cause;
  }
}

/** The parts of a file's status the pidfile backend needs. */
export interface FileStatus {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly kind: FileKind;
}

/** The head of a file: at most `limit` bytes, and its status. */
export interface FileHead {
  readonly bytes: Uint8Array;
  readonly status: FileStatus;
}

let loaded: typeof NodeFs | undefined;
/** `node:fs`, loaded on first use (`./builtins.ts`). */
const fs = (): typeof NodeFs => loaded ??= builtin<typeof NodeFs>("node:fs");

function failure(error: unknown): SystemFailure {
  return new SystemFailure(thrownErrnoName(error), error);
}

function statusOf(stats: NodeFs.Stats): FileStatus {
  return {
    dev: stats.dev,
    ino: stats.ino,
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    kind: stats.isFile()
      ? FileKind.FILE
      : stats.isDirectory()
      ? FileKind.DIRECTORY
      : stats.isSymbolicLink()
      ? FileKind.SYMLINK
      : FileKind.OTHER,
  };
}

// O_NOFOLLOW is absent on Windows; O_EXCL alone never follows a link anyway.
const noFollow = (): number => fs().constants.O_NOFOLLOW ?? 0;
// A FIFO planted at the lock path must not block the reader until a writer comes.
const nonBlock = (): number => fs().constants.O_NONBLOCK ?? 0;

/**
 * `open(path, O_RDWR|O_CREAT|O_EXCL|O_NOFOLLOW, mode)`: a new file's
 * descriptor (readable, so that its creator can check its own content without
 * opening the path again). `O_EXCL` never follows a link, in every runtime.
 */
export function createExclusive(path: string, mode: number): number | SystemFailure {
  try {
    return fs().openSync(
      path,
      fs().constants.O_RDWR | fs().constants.O_CREAT | fs().constants.O_EXCL | noFollow(),
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
      written += fs().writeSync(fd, bytes, written, bytes.length - written, written);
    }
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** Reads up to `limit` bytes from the start of an open file. */
export function readDescriptor(fd: number, limit: number): Uint8Array | SystemFailure {
  try {
    const bytes = new Uint8Array(limit);
    let filled = 0;
    while (filled < bytes.length) {
      const count = fs().readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (count === 0) break;
      filled += count;
    }
    return bytes.subarray(0, filled);
  } catch (error) {
    return failure(error);
  }
}

/**
 * Reads up to `limit` bytes of the regular file at `path`, never following a
 * link and never waiting on a fifo: `lstat` first (Deno's `node:fs` follows
 * links under limited permissions, whatever the flags), then open and check
 * that the descriptor is the file `lstat` saw. `"changed"` when the path
 * changed in between; anything but a regular file comes back with no bytes.
 */
export function readHead(path: string, limit: number): FileHead | SystemFailure | "changed" {
  const seen = statPath(path);
  if (seen instanceof SystemFailure || seen.kind !== FileKind.FILE) {
    return seen instanceof SystemFailure ? seen : { bytes: new Uint8Array(0), status: seen };
  }
  let fd: number;
  try {
    fd = fs().openSync(path, fs().constants.O_RDONLY | noFollow() | nonBlock());
  } catch (error) {
    const failed = failure(error);
    return failed.code === "ENOENT" || failed.code === "ELOOP" ? "changed" : failed;
  }
  try {
    const status = statusOf(fs().fstatSync(fd));
    if (!sameFileStatus(status, seen)) return "changed";
    const bytes = readDescriptor(fd, Math.min(limit, status.size));
    return bytes instanceof SystemFailure ? bytes : { bytes, status };
  } catch (error) {
    return failure(error);
  } finally {
    try {
      fs().closeSync(fd);
    } catch {
      // A read-only descriptor has nothing to lose on close.
    }
  }
}

/** The target of the symbolic link at `path`, or `undefined` when it cannot be read. */
export function readLink(path: string): string | undefined {
  try {
    return fs().readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** `lstat(path)`. */
export function statPath(path: string): FileStatus | SystemFailure {
  try {
    return statusOf(fs().lstatSync(path));
  } catch (error) {
    return failure(error);
  }
}

/** `fstat(fd)`. */
export function statDescriptor(fd: number): FileStatus | SystemFailure {
  try {
    return statusOf(fs().fstatSync(fd));
  } catch (error) {
    return failure(error);
  }
}

/** `unlink(path)`. */
export function removeFile(path: string): 0 | SystemFailure {
  try {
    fs().unlinkSync(path);
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** Sets the descriptor's access and modification times to `ms` (epoch milliseconds). */
export function touchDescriptor(fd: number, ms: number): 0 | SystemFailure {
  try {
    fs().futimesSync(fd, ms / 1000, ms / 1000);
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** `close(fd)`. */
export function closeDescriptor(fd: number): 0 | SystemFailure {
  try {
    fs().closeSync(fd);
    return 0;
  } catch (error) {
    return failure(error);
  }
}

/** A small system file (`/proc/...`) as text, or `undefined` when it cannot be read. */
export function readSystemText(path: string, limit = 1 << 20): string | undefined {
  const head = readHead(path, limit);
  if (head instanceof SystemFailure || head === "changed") return undefined;
  // procfs reports size 0: read it as a stream instead.
  if (head.status.size === 0) return readStream(path, limit);
  return new TextDecoder().decode(head.bytes);
}

function readStream(path: string, limit: number): string | undefined {
  let fd: number;
  try {
    fd = fs().openSync(path, fs().constants.O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < limit) {
      const chunk = new Uint8Array(Math.min(65536, limit - total));
      const count = fs().readSync(fd, chunk, 0, chunk.length, null);
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
      fs().closeSync(fd);
    } catch {
      // Nothing to lose on a read-only descriptor.
    }
  }
}

/** Whether two statuses name the same file (device and inode). */
export function sameFileStatus(a: FileStatus, b: FileStatus): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** `statfs(path)`'s filesystem type (Linux's magic number), or `undefined` where it cannot be read. */
export function statfsOf(path: string): number | undefined {
  try {
    return fs().statfsSync(path).type;
  } catch {
    return undefined;
  }
}
