/**
 * A held pidfile lock: its heartbeat, its release (only while the file still
 * carries our token), and the report when it was taken from us.
 *
 * @module
 */

import {
  closeDescriptor,
  type FileStatus,
  removeFile,
  statPath,
  SystemFailure,
  touchDescriptor,
} from "../../ffi/node_fs.ts";
import { processId } from "../../ffi/node_process.ts";
import { LockError } from "../errors.ts";
import type { IdentityReader } from "../held_here.ts";
import { HeldLock } from "../held_lock.ts";
import { describeHolder } from "../holder_text.ts";
import type { LockHolder } from "../types.ts";
import { type Created, type PidfileRequest, removeIfOurs, stillOurs } from "./attempt.ts";
import { type Found, judge, readLockFile } from "./judge.ts";
import { track, untrack } from "./registry.ts";
import { pidfileTestHooks } from "./test_hooks.ts";

/** Longest heartbeat period; shorter when `staleMs` asks for it. */
const HEARTBEAT_MS = 10_000;

/** The heartbeat period of a holder, from its own `staleMs`. */
function heartbeatPeriod(staleMs: number): number {
  return staleMs === Infinity ? HEARTBEAT_MS : Math.max(25, Math.min(HEARTBEAT_MS, staleMs / 4));
}

/** Device and inode of a file status, as a key. */
function statusKey(status: FileStatus): string {
  return `${status.dev}:${status.ino}`;
}

/** Reads a path's identity with `lstat`, in the terms of {@linkcode statusKey}. */
function readIdentity(path: string): string | null | undefined {
  const status = statPath(path);
  if (!(status instanceof SystemFailure)) return statusKey(status);
  return status.code === "ENOENT" ? null : undefined;
}

/**
 * The release of old, for a test hook only: it opened the path again to check
 * the record (which fails without a free descriptor, and was then taken for a
 * theft) and ignored a removal that failed.
 */
function naiveRemove(path: string, created: Created): boolean {
  let found: Found | undefined;
  try {
    found = readLockFile(path);
  } catch {
    return false;
  }
  if (found === undefined || found.key !== created.record.token) return false;
  removeFile(path);
  return true;
}

function warnCompromised(error: LockError): void {
  console.warn(`filelock: ${error.message}`);
}

/** A held pidfile lock. */
export class PidfileLock extends HeldLock {
  readonly backend = "pidfile" as const;
  /** How often the registry refreshes this lock's heartbeat. */
  readonly heartbeatMs: number;
  #created: Created | undefined;
  /** The created file's status, for {@linkcode identityKey}. */
  #status: FileStatus;
  #onCompromised: (error: LockError) => void;
  #reported = false;

  constructor(request: PidfileRequest, created: Created) {
    super(request.path, false);
    this.#created = created;
    this.#status = created.status;
    this.#onCompromised = request.onCompromised ?? warnCompromised;
    this.heartbeatMs = heartbeatPeriod(request.staleMs);
    track(this);
  }

  identityKey(): string {
    return statusKey(this.#status);
  }

  get identityReader(): IdentityReader {
    return readIdentity;
  }

  get released(): boolean {
    return this.#created === undefined;
  }

  /**
   * Refreshes the heartbeat and checks that the file at the path is still
   * ours; a check that fails for another reason (no descriptors left) proves
   * nothing and reports nothing.
   */
  heartbeat(now: number): void {
    const created = this.#created;
    if (created === undefined) return;
    touchDescriptor(created.fd, now);
    const ours = stillOurs(this.path, created);
    if (ours === false) this.#compromised();
  }

  /**
   * Removes the lock file if it is still ours, else reports the theft through
   * `onCompromised`. A release that cannot complete (the file cannot be
   * checked or removed) throws and leaves the lock held, to be released again.
   */
  releaseSync(): void {
    const created = this.#created;
    if (created === undefined) return;
    const removed = pidfileTestHooks.naiveRelease
      ? naiveRemove(this.path, created)
      : removeIfOurs(this.path, created);
    if (removed instanceof SystemFailure) {
      throw new LockError({
        code: removed.code,
        path: this.path,
        cause: removed.cause,
        detail:
          "the lock could not be released (its file could not be checked or removed); it is still held: release it again",
      });
    }
    this.#created = undefined;
    this.forget();
    untrack(this);
    closeDescriptor(created.fd);
    if (!removed) this.#compromised();
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
}
