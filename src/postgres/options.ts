/**
 * Validation of the arguments of `postgresLocks` and its operations:
 * `TypeError` for a wrong type, `RangeError` for a value out of range,
 * `LockError` `EINVAL` for an unusable lock name.
 *
 * @module
 */

import { LockError } from "../errors.ts";
import { type CommonOptions, commonOptions } from "../common_options.ts";
import type { PostgresLockOptions, PostgresLocksOptions } from "./types.ts";

/** The default lease: how long a holder that stopped answering keeps the lock. */
export const DEFAULT_LEASE_MS = 30_000;
/** The shortest lease accepted: the heartbeat runs every third of it. */
export const MIN_LEASE_MS = 100;
/** PostgreSQL's time settings are 32-bit milliseconds. */
export const MAX_SETTING_MS = 2 ** 31 - 1;
/** The default table of fencing tokens. */
export const DEFAULT_FENCE_TABLE = "lockkit_fences";

/** `postgresLocks` options after validation. */
export interface ValidLocksOptions {
  leaseMs: number;
  /** The fence table as a quoted SQL identifier (`"schema"."name"`). */
  fenceTable: string;
}

/** Lock options after validation. */
export interface ValidLockOptions extends CommonOptions {
  onCompromised: ((error: LockError) => void) | undefined;
}

function quoteIdentifier(part: string): string {
  return `"${part.replaceAll('"', '""')}"`;
}

/** Validates the options of `postgresLocks` and fills in defaults. */
export function locksOptions(options: unknown): ValidLocksOptions {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError(
      `options must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  const o = (options ?? {}) as PostgresLocksOptions;
  const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  if (typeof leaseMs !== "number") throw new TypeError("options.leaseMs must be a number");
  if (!Number.isInteger(leaseMs) || leaseMs < MIN_LEASE_MS || leaseMs > MAX_SETTING_MS) {
    throw new RangeError(
      `options.leaseMs must be an integer from ${MIN_LEASE_MS} to ${MAX_SETTING_MS}, got ${leaseMs}`,
    );
  }
  const table = o.fenceTable ?? DEFAULT_FENCE_TABLE;
  if (typeof table !== "string") throw new TypeError("options.fenceTable must be a string");
  const parts = table.split(".");
  if (parts.length > 2 || parts.some((part) => part === "" || part.includes("\0"))) {
    throw new RangeError(`options.fenceTable must be 'name' or 'schema.name', got '${table}'`);
  }
  return { leaseMs, fenceTable: parts.map(quoteIdentifier).join(".") };
}

/** Checks a lock name. */
export function lockName(name: unknown): string {
  if (typeof name !== "string") {
    throw new TypeError(`lock name must be a string, got ${typeof name}`);
  }
  if (name.length === 0) {
    throw new LockError({ code: "EINVAL", path: name, detail: "the lock name is empty" });
  }
  if (name.includes("\0")) {
    throw new LockError({
      code: "EINVAL",
      path: name.replaceAll("\0", "\\0"),
      detail: "the lock name contains a NUL character",
    });
  }
  return name;
}

/**
 * Validates lock options and fills in defaults: `shared`, `timeout` and
 * `signal` as the file API does (`commonOptions`), and `onCompromised`.
 */
export function lockOptions(options: unknown): ValidLockOptions {
  const { shared, timeout, signal } = commonOptions(options);
  const o = (options ?? {}) as PostgresLockOptions;
  if (o.onCompromised !== undefined && typeof o.onCompromised !== "function") {
    throw new TypeError("options.onCompromised must be a function");
  }
  return { shared, timeout, signal, onCompromised: o.onCompromised };
}
