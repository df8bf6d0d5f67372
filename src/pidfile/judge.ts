/**
 * Reading what a pidfile lock path holds, and judging it: held by a live
 * holder, stale (its holder is gone), or not a record at all
 * (docs/architecture.md, "The pidfile mode"). Used by the attempts, by a
 * holder's heartbeat and release, and by `inspect`.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { type FileStatus, readHead, readLink, SystemFailure } from "../../ffi/node_fs.ts";
import { hostName } from "../../ffi/node_process.ts";
import { fileKindError, LockError } from "../errors.ts";
import type { LockHolder } from "../types.ts";
import { runtime } from "../../ffi/runtime.ts";
import {
  NAMESPACE_FIXES,
  namespaceUnknownReason,
  ownPidNamespace,
  processState,
} from "./liveness.ts";
import { decodeRecord, type PidRecord, RECORD_LIMIT } from "./record.ts";
import { pidfileTestHooks } from "./test_hooks.ts";

/**
 * How long a file that holds no record is taken for one being written (its
 * writer between creating it and writing the record) before it is judged
 * not to be a lock record at all.
 */
export const MALFORMED_GRACE_MS = 2000;

/** What a lock path holds. */
export interface Found {
  readonly status: FileStatus;
  readonly record: PidRecord | undefined;
  /** Names this holding: the record's token, or the file's identity and size for a non-record. */
  readonly key: string;
}

/** A judgement of what was found. */
export interface Verdict {
  /** Its holder is gone: the file may be reclaimed (a guard's, or a record's). */
  readonly stale: boolean;
  /**
   * No record, and too old to be one being written: not a lock record. A lock
   * file like this is somebody's data and is never removed; a reclaim guard
   * (our own file by its name) is stale.
   */
  readonly notARecord: boolean;
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

/**
 * What `path` holds: `undefined` when there is no file, or when it changed
 * while being read (look again). Throws what the caller must fix: a
 * directory, a symlink (never followed), a fifo or device, a file too large
 * to be a record.
 */
export function readLockFile(path: string): Found | undefined {
  const head = readHead(pidfileTestHooks.followLinks ? followed(path) : path, RECORD_LIMIT + 1);
  if (head === "changed") return undefined;
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
  const key = record !== undefined ? record.token : `m${status.dev}-${status.ino}-${status.size}`;
  return { status, record, key };
}

/** Where a symbolic link at `path` points (one level), for the broken variant of a test hook. */
function followed(path: string): string {
  const target = readLink(path);
  return target === undefined ? path : resolve(dirname(path), target);
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

const DENO = runtime === "deno";

/** Why a record's PID cannot be judged here (another host, another PID namespace, or unknown). */
function origin(
  record: PidRecord,
  host: string | undefined,
  namespace: string | undefined,
): string {
  if (record.hostname === "") {
    return "the record names no host (its writer could not read the host name: Deno without --allow-sys=hostname), so it may come from another host and its PID cannot be judged";
  }
  if (host === undefined) {
    return `this process cannot read its own host name${
      DENO ? " (Deno needs --allow-sys=hostname)" : ""
    }, so the PID of a record from host '${record.hostname}' cannot be judged here`;
  }
  if (record.hostname !== host) {
    return `the record comes from host '${record.hostname}' (this is '${host}')`;
  }
  if (namespace === undefined) {
    return `the record comes from a process that recorded its PID namespace, and ${namespaceUnknownReason()}, so its PID may name another process here`;
  }
  return "the record comes from another PID namespace on this host";
}

/** What would let a record that is not judged by its PID be reclaimed after a crash. */
function remedy(
  record: PidRecord,
  host: string | undefined,
  namespace: string | undefined,
  staleMsUnset: boolean,
): string {
  const orStale = staleMsUnset ? ", or set staleMs" : "";
  if (record.hostname === "") return `; run Deno holders with --allow-sys=hostname${orStale}`;
  if (host === undefined) {
    return DENO ? `; run this process with --allow-sys=hostname${orStale}` : "";
  }
  if (record.hostname === host && namespace === undefined) return `; ${NAMESPACE_FIXES}${orStale}`;
  return staleMsUnset ? "; set staleMs to reclaim it after its holder crashed" : "";
}

/**
 * Judges what was found. A file without a record is one being written while
 * it is young (either way of the clock: a future mtime is skew, not youth),
 * then not a lock record. A record from another host or another PID
 * namespace is judged only by its heartbeat and `staleMs`; one from here by
 * whether its process still runs and is still the same process.
 */
export function judge(found: Found, staleMs: number, now: number = Date.now()): Verdict {
  const age = now - found.status.mtimeMs;
  const record = found.record;
  if (record === undefined) {
    const old = Math.abs(age) > MALFORMED_GRACE_MS;
    const what = found.status.size === 0 ? "is empty" : `holds ${found.status.size} bytes`;
    return {
      stale: false,
      notARecord: old,
      holder: undefined,
      reason: old
        ? `the lock file ${what} and is not a lock record (last written ${
          seconds(age)
        } ago); it is left alone: remove it if nothing uses it, or choose another lock path`
        : `the lock file ${what} and was written ${
          seconds(age)
        } ago: its writer may still be writing it`,
    };
  }
  const host = ownHost();
  const namespace = ownPidNamespace();
  const elsewhere = host === undefined || record.hostname === "" || record.hostname !== host;
  const otherNamespace = !elsewhere && record.pidNamespace !== undefined &&
    record.pidNamespace !== namespace;
  if (elsewhere || otherNamespace) {
    const stale = age > staleMs;
    const unset = staleMs === Infinity;
    return {
      stale,
      notARecord: false,
      holder: holderOf(record, stale ? false : undefined),
      reason: `${origin(record, host, namespace)}: it is judged only by its heartbeat, which is ${
        seconds(age)
      } old, and ${unset ? "staleMs is not set" : `staleMs is ${staleMs}`}${
        stale ? "" : remedy(record, host, namespace, unset)
      }`,
    };
  }
  const state = processState(record.pid);
  if (state.alive === false) {
    return {
      stale: true,
      notARecord: false,
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
      notARecord: false,
      holder: holderOf(record, false),
      reason: `pid ${record.pid} is now another process (its start token differs)`,
    };
  }
  return {
    stale: false,
    notARecord: false,
    holder: holderOf(record, state.alive),
    reason: state.alive === true
      ? `its holder, pid ${record.pid}, is running`
      : `whether pid ${record.pid} runs cannot be told: ${state.reason}`,
  };
}
