/**
 * The SQL this module sends, in one place (docs/architecture.md,
 * "PostgreSQL"). Parameters are bound as text (`$1::bigint`), so that every
 * client sends them alike; the only values written into a statement's text
 * are integers computed here and the quoted fence table name.
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

/**
 * The first statement of the waiting transaction: read committed (a fence
 * update waits for a concurrent one instead of failing), no statement
 * timeout, the server ends the wait after `lockTimeoutMs` (0: never) and the
 * session after `leaseMs` idle in the transaction. A savepoint lets the
 * transaction continue after a timed-out wait, to say who holds the lock.
 */
export function waitSettings(lockTimeoutMs: number, leaseMs: number): string {
  return [
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET LOCAL statement_timeout = 0",
    `SET LOCAL lock_timeout = ${settingMs(lockTimeoutMs)}`,
    `SET LOCAL idle_in_transaction_session_timeout = ${settingMs(leaseMs)}`,
    "SAVEPOINT lockkit_wait",
  ].join("; ");
}

/**
 * The wait, in the server: a transaction-level advisory lock; `$1` is the
 * key. Returns `pid` (the server session); `try` returns `held` at once.
 */
export function waitStatement(shared: boolean, attempt: "wait" | "try"): string {
  return attempt === "try"
    ? `SELECT pg_try_advisory_xact_lock${
      variant(shared)
    }($1::bigint) AS held, pg_backend_pid() AS pid`
    : `SELECT pg_advisory_xact_lock${
      variant(shared)
    }($1::bigint)::text AS held, pg_backend_pid() AS pid`;
}

/** After a timed-out wait: back to the savepoint, so that the transaction can ask who holds the lock. */
export const AFTER_TIMEOUT = "ROLLBACK TO SAVEPOINT lockkit_wait";

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

/** After the lock is granted: waits for the fence row's lock must not time out. */
export const NO_LOCK_TIMEOUT = "SET LOCAL lock_timeout = 0";

/** Whether the fence table exists (`$1`: its quoted name). */
export const FENCE_TABLE_EXISTS = "SELECT to_regclass($1) IS NOT NULL AS present";

/** Creates the fence table. */
export function createFenceTable(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, fence bigint NOT NULL)`;
}

/** The next fence of the name `$1`, one more than the last one handed out. */
export function nextFence(table: string): string {
  return `INSERT INTO ${table} AS f (name, fence) VALUES ($1, 1) ` +
    "ON CONFLICT (name) DO UPDATE SET fence = f.fence + 1 RETURNING f.fence::text AS fence";
}

/**
 * One protocol message, so that no pooling proxy can split it: the session
 * takes a session-level lock on `key` (granted at once: it holds the
 * transaction-level one), commits the fence (which also ends the
 * transaction-level lock), and opens the holding transaction, which the
 * server ends (with the session, and so the lock) after `leaseMs` without a
 * statement. An error in the first statement skips the rest.
 */
export function commitAndHold(key: bigint, shared: boolean, leaseMs: number): string {
  return [
    `SELECT pg_try_advisory_lock${variant(shared)}(${BigInt.asIntN(64, key)}::bigint)`,
    "COMMIT",
    "BEGIN ISOLATION LEVEL READ COMMITTED",
    "SET LOCAL statement_timeout = 0",
    `SET LOCAL idle_in_transaction_session_timeout = ${settingMs(leaseMs)}`,
  ].join("; ");
}

/**
 * Whether this session holds the key `$1`/`$2` in `$3` mode now, and which
 * session this is: after the commit, only the session-level lock is left.
 */
export const HOLDING = "SELECT pg_backend_pid() AS pid, EXISTS (SELECT 1 FROM pg_locks " +
  "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1 " +
  "AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND mode = $3) AS held";

/** The heartbeat: a statement resets the server's idle clock; the pid says it is still our session. */
export const HEARTBEAT = "SELECT pg_backend_pid() AS pid";

/** Releases the session-level lock `$1`; `released` is false when the session did not hold it. */
export function unlockStatement(shared: boolean): string {
  return `SELECT pg_advisory_unlock${variant(shared)}($1::bigint) AS released`;
}
