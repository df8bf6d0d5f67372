/**
 * One attempt at a pidfile lock: the lock is the existence of the lock file,
 * created with `O_EXCL` and holding one record that names the holder. A
 * record whose holder is gone is reclaimed, and reclaim is serialised by a
 * guard file named after the stale holding, so that of any number of
 * processes that meet the same stale record exactly one removes it
 * (docs/architecture.md, "The pidfile mode"). When to try again is decided by
 * `src/wait.ts`.
 *
 * @module
 */

import { runtime } from "../../ffi/runtime.ts";
import {
  closeDescriptor,
  createExclusive,
  type FileStatus,
  removeFile,
  sameFileStatus,
  statDescriptor,
  SystemFailure,
  writeAll,
} from "../../ffi/node_fs.ts";
import { processId } from "../../ffi/node_process.ts";
import { type Attempt, BUSY, held, REPLACED } from "../attempt.ts";
import { type LockError, LockTimeoutError } from "../errors.ts";
import { describeHolders } from "../holder_text.ts";
import type { LockHolder } from "../types.ts";
import { type Found, judge, ownHost, readLockFile, systemError } from "./judge.ts";
import { ownStartToken } from "./liveness.ts";
import { encodeRecord, newToken, type PidRecord } from "./record.ts";

/** Guards of guards: a process must die inside a reclaim for a second level to be needed. */
const MAX_GUARD_DEPTH = 3;

/**
 * Hooks for tests only: not exported from `mod.ts`. `naiveReclaim` replaces
 * the guarded reclaim with remove-then-create (the race the guard prevents);
 * `beforeReclaim` runs between judging a record stale and acting on it.
 */
export const pidfileTestHooks: {
  naiveReclaim: boolean;
  beforeReclaim: (() => void) | undefined;
} = { naiveReclaim: false, beforeReclaim: undefined };

/** Everything one pidfile acquire needs. */
export interface PidfileRequest {
  readonly path: string;
  readonly mode: number;
  readonly staleMs: number;
  readonly onCompromised: ((error: LockError) => void) | undefined;
  /**
   * Set when this backend took over from a kernel one (a filesystem without
   * `flock`): whether a kernel lock user holds the file, asked before a stale
   * file is removed.
   */
  readonly heldByKernelUser?: () => boolean;
  /** The holder met by the latest busy attempt, for the timeout message. */
  lastHolder: LockHolder | undefined;
  /** Why the latest busy attempt left the lock alone. */
  lastReason: string;
}

/** A file we created and wrote our record into. */
export interface Created {
  readonly fd: number;
  readonly record: PidRecord;
  readonly status: FileStatus;
}

/** A record for this process, with a fresh token. */
function ownRecord(): PidRecord {
  const start = ownStartToken();
  return {
    pid: processId,
    hostname: ownHost() ?? "",
    startToken: start.token ?? null,
    ...(start.note === undefined ? {} : { startTokenNote: start.note }),
    acquiredAt: new Date().toISOString(),
    token: newToken(),
    runtime,
    backend: "pidfile",
  };
}

/**
 * Creates `path` with `O_EXCL` and writes our record. `undefined` when the
 * file exists; throws on anything else.
 */
function createWithRecord(path: string, mode: number): Created | undefined {
  const fd = createExclusive(path, mode);
  if (fd instanceof SystemFailure) {
    if (fd.code === "EEXIST") return undefined;
    throw systemError(path, fd);
  }
  const record = ownRecord();
  const written = writeAll(fd, encodeRecord(record));
  const status = statDescriptor(fd);
  if (written !== 0 || status instanceof SystemFailure) {
    // Ours alone: created with O_EXCL a moment ago, and too young to be reclaimed.
    closeDescriptor(fd);
    removeFile(path);
    throw systemError(path, written !== 0 ? written : status as SystemFailure);
  }
  return { fd, record, status };
}

/**
 * Removes the file at `path` if it is still the one we created, carrying our
 * token. Returns whether it did.
 */
export function removeIfOurs(path: string, created: Created): boolean {
  let found: Found | undefined;
  try {
    found = readLockFile(path);
  } catch {
    return false; // a directory, a link or someone's data: not our record
  }
  if (
    found === undefined || found.key !== created.record.token ||
    !sameFileStatus(found.status, created.status)
  ) {
    return false;
  }
  return removeFile(path) === 0;
}

/** The guard that serialises the reclaim of the holding `key` at `path`. */
export function guardPath(path: string, key: string): string {
  return `${path}.${shortHash(key)}.reclaim`;
}

/** 64-bit FNV-1a of `text` in hex: short enough to fit in a file name. */
function shortHash(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

/**
 * What a reclaim did: removed the stale holding, found it `changed` (gone,
 * replaced, or no longer stale) or the guard changed under it (both: try
 * again at once), or found another live reclaimer (`busy`).
 */
type ReclaimOutcome = "removed" | "changed" | "busy";

/**
 * Removes the stale holding `found` at `path`, serialised: only the creator of
 * the guard named after that holding may remove it, and only after finding,
 * under the guard, that the path still holds it and it is still stale. A guard
 * left by a reclaimer that died is reclaimed the same way, one level deeper.
 */
function reclaim(
  request: PidfileRequest,
  path: string,
  found: Found,
  depth: number,
): ReclaimOutcome {
  if (depth > MAX_GUARD_DEPTH) return "busy";
  const guard = guardPath(path, found.key);
  const created = createWithRecord(guard, request.mode);
  if (created === undefined) {
    const guardFound = readLockFile(guard);
    if (guardFound === undefined) return "changed";
    // Another process is reclaiming this holding right now.
    if (!judge(guardFound, request.staleMs).stale) return "busy";
    // A reclaimer died inside its reclaim: reclaim its guard first.
    return reclaim(request, guard, guardFound, depth + 1) === "busy" ? "busy" : "changed";
  }
  try {
    const current = readLockFile(path);
    if (
      current === undefined || current.key !== found.key ||
      !sameFileStatus(current.status, found.status) ||
      !judge(current, request.staleMs).stale
    ) {
      return "changed";
    }
    const removed = removeFile(path);
    if (removed === 0) return "removed";
    if (removed.code === "ENOENT") return "changed";
    throw systemError(path, removed, "a stale lock file could not be removed");
  } finally {
    removeIfOurs(guard, created);
    closeDescriptor(created.fd);
  }
}

/**
 * One attempt: `held` with the created lock file, `busy` while a live holder
 * has it (then `request.lastHolder`/`lastReason` say who and why), or
 * `replaced` when the file went away or a stale one was reclaimed (try again
 * at once).
 */
export function attemptPidfile(request: PidfileRequest): Attempt<Created> {
  const { path } = request;
  const created = createWithRecord(path, request.mode);
  if (created !== undefined) return held(created);
  const found = readLockFile(path);
  if (found === undefined) return REPLACED;
  const verdict = judge(found, request.staleMs);
  request.lastHolder = verdict.holder;
  request.lastReason = verdict.reason;
  if (!verdict.stale) return BUSY;
  if (request.heldByKernelUser?.()) {
    request.lastHolder = undefined;
    request.lastReason =
      "a flock(2) user holds the file, so it is not a stale record; use one kind of lock on this path";
    return BUSY;
  }
  pidfileTestHooks.beforeReclaim?.();
  if (pidfileTestHooks.naiveReclaim) {
    removeFile(path);
    return REPLACED;
  }
  return reclaim(request, path, found, 0) === "busy" ? BUSY : REPLACED;
}

/** The timeout error of a pidfile wait, naming the holder met last. */
export function pidfileTimedOut(request: PidfileRequest, timeout: number): LockTimeoutError {
  const holders = request.lastHolder === undefined ? [] : [request.lastHolder];
  return new LockTimeoutError(
    request.path,
    `timed out after ${timeout} ms waiting for the lock, ${
      describeHolders(holders, "held by an unknown process")
    }: ${request.lastReason}`,
    holders,
  );
}
