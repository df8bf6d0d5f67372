/**
 * The lock API of `@lockkit/filelock` on PostgreSQL, for processes on more
 * than one machine: `postgresLocks(sql)` gives `acquire`, `tryAcquire` and
 * `withLock` by lock *name*, on the client you already use (the `postgres`
 * npm package, or `Bun.sql`). Each held lock is a PostgreSQL advisory lock on
 * a connection of your pool, which is the lock's alone until it is released;
 * a waiter waits in the server.
 *
 * Every lock carries a **fencing token**, `lock.fence`, larger than that of
 * every earlier holder of the name. A holder can lose its lock without
 * noticing at once (paused longer than `leaseMs`, cut off by the network,
 * the server restarted): `lock.signal` then aborts and `onCompromised` is
 * called, but only the resource you write to can make that safe, by refusing
 * a write whose fence is lower than the last one it accepted:
 * `UPDATE … SET …, fence = $fence WHERE id = $id AND fence < $fence`.
 *
 * Not safe behind an asynchronous failover (a promoted replica may not have
 * the latest fences), and needs a direct connection or a session-pooling
 * proxy (see the README, "PostgreSQL").
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { postgresLocks } from "@lockkit/filelock/postgres";
 *
 * const sql = postgres("postgres://app@db.internal/app");
 * const locks = postgresLocks(sql, { leaseMs: 10_000 });
 *
 * await locks.withLock("invoices", async (lock) => {
 *   const rows = await sql`UPDATE report SET body = ${"…"}, fence = ${lock.fence}
 *                          WHERE id = 1 AND fence < ${lock.fence}`;
 *   if (rows.count === 0) throw new Error("a newer holder wrote first");
 * }, { timeout: 5_000 });
 * ```
 *
 * @module
 */

import { PgLock } from "./lock.ts";
import { lockKey } from "./keys.ts";
import { lockName, lockOptions, locksOptions } from "./options.ts";
import { Session } from "./session.ts";
import { createFenceTable, FENCE_TABLE_EXISTS } from "./statements.ts";
import { acquireError, sqlState } from "./errors.ts";
import type {
  PostgresClient,
  PostgresLock,
  PostgresLockOptions,
  PostgresLocks,
  PostgresLocksOptions,
  PostgresQuery,
  PostgresTransaction,
} from "./types.ts";

export { LockError, LockTimeoutError } from "../errors.ts";
export type { LockErrorOptions } from "../errors.ts";
export type { LockHolder } from "../types.ts";
export type {
  PostgresClient,
  PostgresLock,
  PostgresLockOptions,
  PostgresLocks,
  PostgresLocksOptions,
  PostgresQuery,
  PostgresTransaction,
};

/** Creates the fence table once per `postgresLocks`, unless it exists; retried after a failure. */
function fenceTableReady(sql: PostgresClient, table: string): () => Promise<void> {
  let ready: Promise<void> | undefined;
  const ensure = async (): Promise<void> => {
    const rows = await sql.unsafe(FENCE_TABLE_EXISTS, [table]);
    if ((rows[0] as { present?: unknown } | undefined)?.present === true) return;
    try {
      await sql.unsafe(createFenceTable(table));
    } catch (error) {
      // Another client created it at the same moment.
      if (sqlState(error) !== "23505" && sqlState(error) !== "42P07") throw error;
    }
  };
  return () => {
    ready ??= ensure().catch((error) => {
      ready = undefined;
      throw error;
    });
    return ready;
  };
}

/**
 * The lock API on a PostgreSQL client: `sql` is the `postgres` (npm) client
 * or `Bun.sql`. `leaseMs` (default 30 000) is how long a holder that stops
 * answering keeps its lock before the server ends its session;
 * `fenceTable` (default `"lockkit_fences"`) is where fences are counted,
 * created when missing. Each held lock and each waiter uses one connection of
 * the pool until it is released: size the pool (`max`) for that.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { postgresLocks } from "@lockkit/filelock/postgres";
 *
 * const locks = postgresLocks(postgres("postgres://app@db.internal/app"));
 * const lock = await locks.acquire("nightly-report", { timeout: 10_000 });
 * try {
 *   await fetch("https://storage.internal/report", {
 *     method: "PUT",
 *     headers: { "x-fence": String(lock.fence) },
 *     signal: lock.signal,
 *   });
 * } finally {
 *   await lock.release();
 * }
 * ```
 */
export function postgresLocks(sql: PostgresClient, options?: PostgresLocksOptions): PostgresLocks {
  if (
    (typeof sql !== "object" && typeof sql !== "function") || sql === null ||
    typeof sql.begin !== "function" || typeof sql.unsafe !== "function"
  ) {
    throw new TypeError(
      "postgresLocks needs a PostgreSQL client with begin() and unsafe(): the `postgres` (npm) client or Bun.sql",
    );
  }
  const { leaseMs, fenceTable } = locksOptions(options);
  const ready = fenceTableReady(sql, fenceTable);

  async function take(
    name: unknown,
    options: unknown,
    attempt: "wait" | "try",
  ): Promise<PostgresLock | null> {
    const valid = lockName(name);
    const { shared, timeout, signal, onCompromised } = lockOptions(options);
    if (attempt === "wait" && signal?.aborted) throw signal.reason;
    await ready().catch((error) => {
      throw acquireError(error, valid);
    });
    const session = new Session({
      sql,
      name: valid,
      key: lockKey(valid),
      shared,
      leaseMs,
      fenceTable,
      attempt,
      timeout: attempt === "try" ? 0 : timeout,
      signal: attempt === "try" ? undefined : signal,
    });
    const granted = await session.start();
    return granted === null ? null : new PgLock(valid, shared, session, granted, onCompromised);
  }

  return {
    acquire: (name, options) => take(name, options, "wait") as Promise<PostgresLock>,
    tryAcquire: (name, options) => take(name, options, "try"),
    async withLock<T>(
      name: string,
      fn: (lock: PostgresLock) => T | Promise<T>,
      options?: PostgresLockOptions,
    ): Promise<T> {
      if (typeof fn !== "function") throw new TypeError("withLock needs a function to run");
      const lock = (await take(name, options, "wait")) as PostgresLock;
      try {
        return await fn(lock);
      } finally {
        await lock.release();
      }
    },
  };
}
