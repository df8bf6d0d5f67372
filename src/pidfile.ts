/**
 * The degraded mode (DESIGN §4): the lock is the existence of the lock file,
 * created with `O_EXCL` and holding one record that names the holder. A
 * record whose holder is gone is reclaimed, and reclaim is serialised by a
 * guard file named after the stale record, so that of any number of processes
 * that meet the same stale record exactly one removes it.
 *
 * @module
 */

import { runtime } from "../ffi/runtime.ts";
import {
  closeDescriptor,
  createExclusive,
  type FileStatus,
  hostName,
  processId,
  readHead,
  removeFile,
  statDescriptor,
  statPath,
  SystemFailure,
  touchDescriptor,
  writeAll,
} from "../ffi/system.ts";
import { LockError, LockTimeoutError } from "./errors.ts";
import { describeHolder, describeHolders } from "./holder.ts";
import { ownStartToken, processState } from "./liveness.ts";
import { decodeRecord, encodeRecord, newToken, type PidRecord, RECORD_LIMIT } from "./record.ts";
import { track, untrack } from "./pidfile_registry.ts";
import type { Lock, LockHolder } from "./types.ts";

/**
 * How long an empty or unparsable record is left alone: its writer may be
 * between creating the file and writing the record.
 */
export const MALFORMED_GRACE_MS = 2000;

/** Longest heartbeat period; shorter when `staleMs` asks for it. */
export const HEARTBEAT_MS = 10_000;

/** Guards of guards: a process must die inside a reclaim for a second level to be needed. */
const MAX_GUARD_DEPTH = 3;

/** Attempts within one settled attempt (each a reclaim or a vanished file). */
const MAX_ROUNDS = 16;

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

/** What the lock path holds. */
interface Found {
  readonly status: FileStatus;
  readonly record: PidRecord | undefined;
  /** Names this holding: the record's token, or the file's identity for a malformed one. */
  readonly key: string;
}

/** A judgement of what was found. */
interface Verdict {
  readonly stale: boolean;
  readonly reason: string;
  readonly holder: LockHolder | undefined;
}

let cachedHost: string | undefined | null = null;

function ownHost(): string | undefined {
  if (cachedHost === null) cachedHost = hostName();
  return cachedHost;
}

function systemError(path: string, failure: SystemFailure, detail?: string): LockError {
  return new LockError({ code: failure.code, path, cause: failure.cause, detail });
}

/** The record at `path`, `undefined` when there is no file; throws what the caller must fix. */
export function readLockFile(path: string): Found | undefined {
  const head = readHead(path, RECORD_LIMIT + 1);
  if (head instanceof SystemFailure) {
    if (head.code === "ENOENT") return undefined;
    throw systemError(path, head);
  }
  const { status, bytes } = head;
  if (status.kind === "directory") throw new LockError({ code: "EISDIR", path });
  if (status.kind !== "file") {
    throw new LockError({ code: "EINVAL", path, detail: "the lock path is not a regular file" });
  }
  if (status.size > RECORD_LIMIT) {
    // Nobody's lock record is this large: it is someone's data, not ours to remove.
    throw new LockError({
      code: "EINVAL",
      path,
      detail: `the lock file holds ${status.size} bytes, which is not a lock record (at most ${
        RECORD_LIMIT / 1024
      } KiB); it is left alone: remove it or choose another lock path`,
    });
  }
  const record = decodeRecord(bytes);
  const key = record !== undefined
    ? record.token
    : `m${status.dev}-${status.ino}-${Math.round(status.mtimeMs * 1000)}-${status.size}`;
  return { status, record, key };
}

/** The holder a record names. */
function holderOf(record: PidRecord, alive: boolean | undefined): LockHolder {
  return {
    backend: "pidfile",
    pid: record.pid,
    hostname: record.hostname,
    since: record.acquiredAt,
    shared: false,
    runtime: record.runtime,
    alive,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Applies DESIGN §4 to what was found. */
export function judge(found: Found, staleMs: number, now: number = Date.now()): Verdict {
  const age = now - found.status.mtimeMs;
  const record = found.record;
  if (record === undefined) {
    const stale = age > MALFORMED_GRACE_MS;
    return {
      stale,
      holder: undefined,
      reason: `the lock file holds no valid record (${
        found.status.size === 0 ? "empty" : "unparsable"
      }) and was last written ${seconds(age)} ago${
        stale ? "" : `; its writer may still be writing it`
      }`,
    };
  }
  const host = ownHost();
  if (host === undefined || record.hostname === "" || record.hostname !== host) {
    const stale = age > staleMs;
    return {
      stale,
      holder: holderOf(record, stale ? false : undefined),
      reason: `the record comes from host '${record.hostname}' (this is '${
        host ?? "unknown"
      }'), whose heartbeat is ${seconds(age)} old${
        staleMs === Infinity ? " and staleMs is not set" : `, staleMs is ${staleMs}`
      }`,
    };
  }
  const state = processState(record.pid);
  if (state.alive === false) {
    return {
      stale: true,
      holder: holderOf(record, false),
      reason: `its holder, pid ${record.pid}, has exited`,
    };
  }
  if (
    state.alive === true && record.startToken !== null && state.startToken !== undefined &&
    state.startToken !== record.startToken
  ) {
    return {
      stale: true,
      holder: holderOf(record, false),
      reason: `pid ${record.pid} is now another process (its start token differs)`,
    };
  }
  return {
    stale: false,
    holder: holderOf(record, state.alive),
    reason: state.alive === true
      ? `its holder, pid ${record.pid}, is running`
      : `whether pid ${record.pid} runs cannot be told: ${state.reason}`,
  };
}

/** A record for this process, with a fresh token. */
function ownRecord(): PidRecord {
  const start = ownStartToken();
  const record: PidRecord = {
    pid: processId,
    hostname: ownHost() ?? "",
    startToken: start.token ?? null,
    ...(start.note === undefined ? {} : { startTokenNote: start.note }),
    acquiredAt: new Date().toISOString(),
    token: newToken(),
    runtime,
    backend: "pidfile",
  };
  return record;
}

/** A file we created and wrote our record into. */
interface Created {
  readonly fd: number;
  readonly record: PidRecord;
  readonly status: FileStatus;
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
function removeIfOurs(path: string, created: Created): boolean {
  let found: Found | undefined;
  try {
    found = readLockFile(path);
  } catch {
    return false; // a directory, a link or someone's data: not our record
  }
  if (
    found === undefined || found.key !== created.record.token ||
    found.status.ino !== created.status.ino || found.status.dev !== created.status.dev
  ) {
    return false;
  }
  const removed = removeFile(path);
  return removed === 0;
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

type ReclaimOutcome = "removed" | "changed" | "busy";

/**
 * Removes the stale holding `found` at `path`, serialised: only the creator of
 * the guard named after that holding may remove it, and only after finding,
 * under the guard, that the path still holds it and it is still stale.
 */
function reclaim(
  request: PidfileRequest,
  path: string,
  found: Found,
  depth: number,
): ReclaimOutcome {
  if (depth > MAX_GUARD_DEPTH) return "busy";
  const guard = guardPath(path, found.key);
  let created: Created | undefined;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    created = createWithRecord(guard, request.mode);
    if (created !== undefined) break;
    const guardFound = readLockFile(guard);
    if (guardFound === undefined) continue;
    const guardVerdict = judge(guardFound, request.staleMs);
    // Another process is reclaiming this holding right now.
    if (!guardVerdict.stale) return "busy";
    // A reclaimer died inside its reclaim: reclaim its guard the same way.
    if (reclaim(request, guard, guardFound, depth + 1) === "busy") return "busy";
  }
  if (created === undefined) return "busy";
  try {
    const current = readLockFile(path);
    if (
      current === undefined || current.key !== found.key ||
      current.status.ino !== found.status.ino || current.status.dev !== found.status.dev ||
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
 * One settled attempt: the created lock file, or `undefined` when a live
 * holder has it (then `request.lastHolder`/`lastReason` say who and why).
 */
export function attemptPidfile(request: PidfileRequest): Created | undefined {
  const { path } = request;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const created = createWithRecord(path, request.mode);
    if (created !== undefined) return created;
    const found = readLockFile(path);
    if (found === undefined) continue;
    const verdict = judge(found, request.staleMs);
    request.lastHolder = verdict.holder;
    request.lastReason = verdict.reason;
    if (!verdict.stale) return undefined;
    if (request.heldByKernelUser?.()) {
      request.lastHolder = undefined;
      request.lastReason =
        "a flock(2) user holds the file, so it is not a stale record; use one kind of lock on this path";
      return undefined;
    }
    pidfileTestHooks.beforeReclaim?.();
    if (pidfileTestHooks.naiveReclaim) {
      removeFile(path);
      continue;
    }
    if (reclaim(request, path, found, 0) === "busy") return undefined;
  }
  return undefined;
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

/** The heartbeat period of a holder, from its own `staleMs`. */
function heartbeatPeriod(staleMs: number): number {
  return staleMs === Infinity ? HEARTBEAT_MS : Math.max(25, Math.min(HEARTBEAT_MS, staleMs / 4));
}

function warnCompromised(error: LockError): void {
  console.warn(`filelock: ${error.message}`);
}

/** A held pidfile lock. */
export class PidfileLock implements Lock {
  readonly path: string;
  readonly shared: boolean = false;
  readonly backend = "pidfile" as const;
  /** How often the registry refreshes this lock's heartbeat. */
  readonly heartbeatMs: number;
  #created: Created | undefined;
  #onCompromised: (error: LockError) => void;
  #reported = false;

  constructor(request: PidfileRequest, created: Created) {
    this.path = request.path;
    this.#created = created;
    this.#onCompromised = request.onCompromised ?? warnCompromised;
    this.heartbeatMs = heartbeatPeriod(request.staleMs);
    track(this);
  }

  get released(): boolean {
    return this.#created === undefined;
  }

  /** Refreshes the heartbeat and checks that the file at the path is still ours. */
  heartbeat(now: number): void {
    const created = this.#created;
    if (created === undefined) return;
    touchDescriptor(created.fd, now);
    const atPath = statPath(this.path);
    if (
      atPath instanceof SystemFailure || atPath.ino !== created.status.ino ||
      atPath.dev !== created.status.dev
    ) {
      this.#compromised();
    }
  }

  releaseSync(): void {
    const created = this.#created;
    if (created === undefined) return;
    this.#created = undefined;
    untrack(this);
    let ours: boolean;
    try {
      ours = removeIfOurs(this.path, created);
    } finally {
      closeDescriptor(created.fd);
    }
    if (!ours) this.#compromised();
  }

  #compromised(): void {
    if (this.#reported) return;
    this.#reported = true;
    let holders: LockHolder[] = [];
    try {
      const found = readLockFile(this.path);
      const holder = found === undefined ? undefined : judge(found, Infinity).holder;
      if (holder !== undefined) holders = [holder];
    } catch {
      // Whatever is there now, it is not our record; the report says so.
    }
    const now = holders.length > 0
      ? `now held by ${describeHolder(holders[0])}`
      : "the lock file is gone or holds no record";
    this.#onCompromised(
      new LockError({
        code: "ECOMPROMISED",
        path: this.path,
        detail: `the lock was taken from this process (pid ${processId}) while it held it; ${now}`,
        holders,
      }),
    );
  }

  release(): Promise<void> {
    try {
      this.releaseSync();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  [Symbol.dispose](): void {
    this.releaseSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
