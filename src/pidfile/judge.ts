/**
 * Reading what a pidfile lock path holds, and judging it: held by a live
 * holder, or stale (docs/architecture.md, "The pidfile mode"). Used by the
 * attempts, by a holder's heartbeat and release, and by `inspect`.
 *
 * @module
 */

import { type FileStatus, readHead, SystemFailure } from "../../ffi/node_fs.ts";
import { hostName } from "../../ffi/node_process.ts";
import { fileKindError, LockError } from "../errors.ts";
import type { LockHolder } from "../types.ts";
import { processState } from "./liveness.ts";
import { decodeRecord, type PidRecord, RECORD_LIMIT } from "./record.ts";

/**
 * How long an empty or unparsable record is left alone: its writer may be
 * between creating the file and writing the record.
 */
export const MALFORMED_GRACE_MS = 2000;

/** What the lock path holds. */
export interface Found {
  readonly status: FileStatus;
  readonly record: PidRecord | undefined;
  /** Names this holding: the record's token, or the file's identity for a malformed one. */
  readonly key: string;
}

/** A judgement of what was found. */
export interface Verdict {
  readonly stale: boolean;
  readonly reason: string;
  readonly holder: LockHolder | undefined;
}

let cachedHost: string | undefined | null = null;

/** This host's name, read once. */
export function ownHost(): string | undefined {
  if (cachedHost === null) cachedHost = hostName();
  return cachedHost;
}

/** A `LockError` for a failed file call on `path`. */
export function systemError(path: string, failure: SystemFailure, detail?: string): LockError {
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
  const wrongKind = fileKindError(status.kind, path);
  if (wrongKind !== undefined) throw wrongKind;
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

/**
 * Judges what was found: a malformed record is stale after its grace; a
 * record from another host only by its heartbeat and `staleMs`; one from
 * this host by whether its process still runs and is still the same process.
 */
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
