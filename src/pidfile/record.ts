/**
 * The pidfile record: one line of JSON naming the holder, and how a reader
 * turns the bytes it finds back into one (or decides it cannot).
 *
 * @module
 */

import type { RuntimeName } from "../../ffi/runtime.ts";

/** What a pidfile lock file holds. */
export interface PidRecord {
  /** The holder's process id. */
  readonly pid: number;
  /** The holder's host name ("" when it could not be read). */
  readonly hostname: string;
  /** Start time of the holder's process and the boot id, or `null` when unknowable. */
  readonly startToken: string | null;
  /** Why `startToken` is `null`, when it is. */
  readonly startTokenNote?: string;
  /**
   * The holder's PID namespace (`<ns inode>@<boot id>`), where it could read
   * it: a reader in another namespace cannot judge the PID.
   */
  readonly pidNamespace?: string;
  /** When the lock was taken (ISO 8601). */
  readonly acquiredAt: string;
  /** Random; identifies this holding of the lock. */
  readonly token: string;
  /** The runtime of the holder. */
  readonly runtime?: RuntimeName;
  /** Always `"pidfile"`. */
  readonly backend: "pidfile";
}

/** Records are small; anything larger was not written by a lock holder. */
export const RECORD_LIMIT = 64 * 1024;

/** A token is 32 hex digits; a record's token also names a file, so it must be exactly that. */
const TOKEN_PATTERN = /^[0-9a-f]{32}$/;

/** A fresh random token. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}

/** The bytes of a record: exactly one line of JSON. */
export function encodeRecord(record: PidRecord): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(record)}\n`);
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The record in `bytes`, or `undefined` when they are not one (empty, partial, binary). */
export function decodeRecord(bytes: Uint8Array): PidRecord | undefined {
  if (bytes.length === 0 || bytes.length > RECORD_LIMIT) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const r = value as Record<string, unknown>;
  if (
    typeof r.pid !== "number" || !Number.isSafeInteger(r.pid) || r.pid <= 0 ||
    typeof r.hostname !== "string" ||
    (r.startToken !== null && typeof r.startToken !== "string") ||
    (r.pidNamespace !== undefined && typeof r.pidNamespace !== "string") ||
    typeof r.acquiredAt !== "string" ||
    typeof r.token !== "string" || !TOKEN_PATTERN.test(r.token)
  ) {
    return undefined;
  }
  return value as PidRecord;
}
