/**
 * Lock names → PostgreSQL advisory-lock keys (docs/architecture.md,
 * "PostgreSQL"). A key is the first 8 bytes of SHA-256 of a namespaced name,
 * read as a signed 64-bit integer: the one-`bigint` form of the advisory lock
 * functions. Two names that collide share one lock, which only ever excludes
 * more than asked, never less; fences are kept per name, so they stay
 * strictly increasing per name even then.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Prefixed to every name, so that our keys stay clear of small keys that applications pick by hand. */
const NAMESPACE = "@lockkit/filelock/postgres\0";

/** The advisory-lock key of the lock `name`. */
export function lockKey(name: string): bigint {
  const digest = createHash("sha256").update(NAMESPACE + name, "utf8").digest();
  return digest.readBigInt64BE(0);
}

/**
 * How `pg_locks` shows a one-`bigint` advisory key: `classid` holds its high
 * 32 bits and `objid` its low 32 bits (both unsigned), with `objsubid` 1.
 */
export function keyColumns(key: bigint): { classid: string; objid: string } {
  const unsigned = BigInt.asUintN(64, key);
  return { classid: String(unsigned >> 32n), objid: String(unsigned & 0xffffffffn) };
}
