/**
 * One attempt at a pidfile lock: the lock is the existence of the lock file,
 * created with `O_EXCL` and holding one record that names the holder. A
 * record whose holder is gone is reclaimed, serialised by a guard file, so
 * that of any number of processes that meet the same stale record exactly
 * one removes it (docs/architecture.md, "The pidfile mode"). A file that is
 * not a record is never removed. When to try again is decided by
 * `src/wait.ts`.
 *
 * @module
 */

import { runtime } from "../../ffi/runtime.ts";
import {
  closeDescriptor,
  createExclusive,
  type FileStatus,
  readDescriptor,
  removeFile,
  sameFileStatus,
  statDescriptor,
  statPath,
  SystemFailure,
  writeAll,
} from "../../ffi/node_fs.ts";
import { processId } from "../../ffi/node_process.ts";
import { type Attempt, BUSY, held, REPLACED } from "../attempt.ts";
import { LockError, LockTimeoutError } from "../errors.ts";
import { describeHolders } from "../holder_text.ts";
import type { LockHolder } from "../types.ts";
import { type Found, judge, ownHost, readLockFile, systemError } from "./judge.ts";
import { guardPath, holdingGuardPath } from "./guard_name.ts";
import { ownPidNamespace, ownStartToken } from "./liveness.ts";
import { decodeRecord, encodeRecord, newToken, type PidRecord } from "./record.ts";
import { pidfileTestHooks } from "./test_hooks.ts";

/** Guards of guards: a process must die inside a reclaim for a second level to be needed. */
const MAX_GUARD_LEVEL = 3;

export { pidfileTestHooks } from "./test_hooks.ts";

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

/** A file we created and wrote our record into, open as `fd`. */
export interface Created {
  readonly fd: number;
  readonly record: PidRecord;
  readonly status: FileStatus;
  /** The record's length in bytes. */
  readonly length: number;
}

/** A record for this process, with a fresh token. */
function ownRecord(): PidRecord {
  const start = ownStartToken();
  const namespace = ownPidNamespace();
  return {
    pid: processId,
    hostname: ownHost() ?? "",
    startToken: start.token ?? null,
    ...(start.note === undefined ? {} : { startTokenNote: start.note }),
    ...(namespace === undefined ? {} : { pidNamespace: namespace }),
    acquiredAt: new Date().toISOString(),
    token: newToken(),
    runtime,
    backend: "pidfile",
  };
}

/**
 * Whether the path still names the file we created and it still holds our
 * record: `lstat` of the path against the descriptor we hold (which keeps
 * the inode from being reused), and our token read back through that
 * descriptor. Needs no new descriptor, so it works when the process has none
 * left. A failure that leaves it unknown is returned, not guessed.
 */
export function stillOurs(path: string, created: Created): boolean | SystemFailure {
  const atPath = statPath(path);
  if (atPath instanceof SystemFailure) return atPath.code === "ENOENT" ? false : atPath;
  if (!sameFileStatus(atPath, created.status)) return false;
  const bytes = readDescriptor(created.fd, created.length);
  if (bytes instanceof SystemFailure) return bytes;
  return decodeRecord(bytes)?.token === created.record.token;
}

/**
 * Creates `path` with `O_EXCL` and writes our record. `"exists"` when there
 * is a file at the path; `"lost"` when the file we created is no longer the
 * one at the path once the record is in it (someone removed it meanwhile:
 * then we hold nothing); throws on anything else.
 */
function createWithRecord(path: string, mode: number): Created | "exists" | "lost" {
  const fd = createExclusive(path, mode);
  if (fd instanceof SystemFailure) {
    if (fd.code === "EEXIST") return "exists";
    throw systemError(path, fd);
  }
  pidfileTestHooks.afterCreate?.();
  const record = ownRecord();
  const bytes = encodeRecord(record);
  const written = writeAll(fd, bytes);
  const status = statDescriptor(fd);
  if (written !== 0 || status instanceof SystemFailure) {
    // Still ours if the path names it (a file without a record is never removed by others).
    const atPath = statPath(path);
    if (!(status instanceof SystemFailure) && !(atPath instanceof SystemFailure)) {
      if (sameFileStatus(atPath, status)) removeFile(path);
    }
    closeDescriptor(fd);
    throw systemError(path, written !== 0 ? written : status as SystemFailure);
  }
  const created: Created = { fd, record, status, length: bytes.length };
  if (pidfileTestHooks.verifyCreated && stillOurs(path, created) !== true) {
    closeDescriptor(fd);
    return "lost";
  }
  return created;
}

/**
 * Removes the file at `path` if it is still the one we created, carrying our
 * token: `true` when removed (or already gone as ours), `false` when the path
 * is not ours, or the failure that left it undecided.
 */
export function removeIfOurs(path: string, created: Created): boolean | SystemFailure {
  const ours = stillOurs(path, created);
  if (ours !== true) return ours;
  const removed = removeFile(path);
  return removed === 0 || removed.code === "ENOENT" ? true : removed;
}

/**
 * The guard of `level` for the reclaim of `found` (the lock file at level 1),
 * as `guardPath` names it, or as a test hook's broken variant does.
 */
export function guardFor(path: string, level: number, found: Found): string {
  const naming = pidfileTestHooks.guardNaming;
  if (naming === "per-holding") return holdingGuardPath(path, found);
  return guardPath(path, level, naming !== "unshortened");
}

/**
 * What a reclaim did: removed the stale file, found it `changed` (gone,
 * replaced, or no longer stale) or its guard changed under it (both: try
 * again at once), or found another live reclaimer (`busy`).
 */
type ReclaimOutcome = "removed" | "changed" | "busy";

/** Whether what is at `target` may be removed: a stale record; for a guard, also a non-record. */
function removable(found: Found, staleMs: number, isGuard: boolean): boolean {
  const verdict = judge(found, staleMs);
  return verdict.stale || ((isGuard || pidfileTestHooks.reclaimNonRecords) && verdict.notARecord);
}

/**
 * Removes the stale holding `found` at `target` (the lock file at level 1, a
 * dead guard above), serialised: only the creator of the guard of this level
 * may remove it, and only after finding, under the guard, that the path still
 * holds it and it is still removable. A guard left by a reclaimer that died
 * is reclaimed the same way, one level up.
 */
function reclaim(
  request: PidfileRequest,
  target: string,
  found: Found,
  level: number,
): ReclaimOutcome {
  if (level > MAX_GUARD_LEVEL) return "busy";
  const guard = guardFor(request.path, level, found);
  const created = createWithRecord(guard, request.mode);
  if (created === "lost") return "changed";
  if (created === "exists") {
    const guardFound = readLockFile(guard);
    if (guardFound === undefined) return "changed";
    // Another process is reclaiming right now.
    if (!removable(guardFound, request.staleMs, true)) return "busy";
    // A reclaimer died inside its reclaim: reclaim its guard first.
    return reclaim(request, guard, guardFound, level + 1) === "busy" ? "busy" : "changed";
  }
  try {
    const current = readLockFile(target);
    if (
      current === undefined || current.key !== found.key ||
      !sameFileStatus(current.status, found.status) ||
      !removable(current, request.staleMs, level > 1)
    ) {
      return "changed";
    }
    const removed = removeFile(target);
    if (removed !== 0 && removed.code !== "ENOENT") {
      throw systemError(target, removed, "a stale lock file could not be removed");
    }
    if (level === 1) pidfileTestHooks.afterRemove?.();
    return removed === 0 ? "removed" : "changed";
  } finally {
    removeIfOurs(guard, created);
    closeDescriptor(created.fd);
  }
}

/**
 * One attempt: `held` with the created lock file, `busy` while a live holder
 * has it (then `request.lastHolder`/`lastReason` say who and why), or
 * `replaced` when the file went away or a stale one was reclaimed (try again
 * at once). Throws `EINVAL` for a file at the path that is not a lock record:
 * it is somebody's data, and left alone.
 */
export function attemptPidfile(request: PidfileRequest): Attempt<Created> {
  const { path } = request;
  const created = createWithRecord(path, request.mode);
  if (created === "lost") return REPLACED;
  if (created !== "exists") return held(created);
  const found = readLockFile(path);
  if (found === undefined) return REPLACED;
  const verdict = judge(found, request.staleMs);
  request.lastHolder = verdict.holder;
  request.lastReason = verdict.reason;
  const reclaimable = verdict.stale || (verdict.notARecord && pidfileTestHooks.reclaimNonRecords);
  if (verdict.notARecord && !reclaimable) {
    throw new LockError({ code: "EINVAL", path, detail: verdict.reason });
  }
  if (!reclaimable) return BUSY;
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
  return reclaim(request, path, found, 1) === "busy" ? BUSY : REPLACED;
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
