/**
 * The SQL this module sends, in one place (docs/architecture.md,
 * "PostgreSQL"). The lock name is always a bound parameter (text); the only
 * values written into a statement's text are integers computed here (keys,
 * milliseconds) and the quoted fence table name. A statement without
 * parameters goes out in the simple protocol, which costs the server less.
 *
 * @module
 */

/** Whether a lock is taken shared or exclusive: the suffix of the advisory functions. */
function variant(shared: boolean): string {
  return shared ? "_shared" : "";
}

/** `ms` as a PostgreSQL time setting (milliseconds, an integer; 0 turns it off). */
function settingMs(ms: number): number {
  return Math.max(0, Math.min(2 ** 31 - 1, Math.ceil(ms)));
}

/** A key as SQL text: an integer computed here, never user input. */
function keyText(key: bigint): string {
  return `'${BigInt.asIntN(64, key)}'::bigint`;
}

/**
 * The first statements of the waiting transaction: read committed (a fence
 * update waits for a concurrent one instead of failing), no statement
 * timeout, the server ends the wait after `lockTimeoutMs` (0: never) and the
 * session after `leaseMs` idle in the transaction.
 */
export function waitSettings(lockTimeoutMs: number, leaseMs: number): string {
  return [
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET LOCAL statement_timeout = 0",
    `SET LOCAL lock_timeout = ${settingMs(lockTimeoutMs)}`,
    `SET LOCAL idle_in_transaction_session_timeout = ${settingMs(leaseMs)}`,
  ].join("; ");
}

/**
 * The wait, in the server: a transaction-level advisory lock on `key`.
 * Returns `pid` (the server session); `try` returns `held` at once.
 */
export function waitStatement(key: bigint, shared: boolean, attempt: "wait" | "try"): string {
  const k = keyText(key);
  return attempt === "try"
    ? `SELECT pg_try_advisory_xact_lock${variant(shared)}(${k}) AS held, pg_backend_pid() AS pid`
    : `SELECT pg_advisory_xact_lock${variant(shared)}(${k})::text AS held, pg_backend_pid() AS pid`;
}

/** After a timed-out wait: a fresh transaction, to ask who holds the lock. */
export const AFTER_TIMEOUT = "ROLLBACK; BEGIN";

/**
 * Who holds the key `$1`/`$2` (its `pg_locks` columns): their sessions' pid,
 * application name, client address and mode.
 */
export const HOLDERS = "SELECT l.pid, l.mode, a.application_name AS application, " +
  "host(a.client_addr) AS client FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid " +
  "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 " +
  "AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid " +
  "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) " +
  "ORDER BY l.pid LIMIT 5";

/**
 * After the lock is granted: a wait for the fence row's lock (another shared
 * holder updating it) must not time out.
 */
export const NO_LOCK_TIMEOUT = "SET LOCAL lock_timeout = 0";

/** Whether the fence table exists (`$1`: its quoted name). */
export const FENCE_TABLE_EXISTS = "SELECT to_regclass($1) IS NOT NULL AS present";

/** Creates the fence table. */
export function createFenceTable(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, fence bigint NOT NULL)`;
}

/**
 * Once the transaction-level lock is held: the next fence of the name `$1`
 * (one more than the last one handed out), then the session-level lock on
 * `key` (granted at once: the session holds the transaction-level one), as
 * `fence` and `held`.
 */
export function fenceAndSessionLock(table: string, key: bigint, shared: boolean): string {
  return `WITH f AS (INSERT INTO ${table} AS t (name, fence) VALUES ($1::text, 1) ` +
    "ON CONFLICT (name) DO UPDATE SET fence = t.fence + 1 RETURNING t.fence) " +
    `SELECT f.fence::text AS fence, pg_try_advisory_lock${variant(shared)}(${
      keyText(key)
    }) AS held FROM f`;
}

/**
 * One protocol message, so that no transaction-pooling proxy sees the
 * session idle between the two transactions: commit the fence (which ends
 * the transaction-level lock; the session-level one stays) and open the
 * holding transaction, which the server ends (with the session, and so the
 * lock) after `leaseMs` without a statement.
 */
export function commitAndHold(leaseMs: number): string {
  return [
    "COMMIT",
    "BEGIN ISOLATION LEVEL READ COMMITTED",
    "SET LOCAL statement_timeout = 0",
    `SET LOCAL idle_in_transaction_session_timeout = ${settingMs(leaseMs)}`,
  ].join("; ");
}

/** The heartbeat: a statement resets the server's idle clock; the pid says it is still our session. */
export const HEARTBEAT = "SELECT pg_backend_pid() AS pid";

/** Releases the session-level lock on `key`; `released` is false when the session did not hold it. */
export function unlockStatement(key: bigint, shared: boolean): string {
  return `SELECT pg_advisory_unlock${variant(shared)}(${keyText(key)}) AS released`;
}
