/**
 * The public types of `@lockkit/filelock/postgres`, and the few members of the
 * user's client that it calls (docs/architecture.md, "PostgreSQL").
 *
 * @module
 */

import type { LockError } from "../errors.ts";

/**
 * A query of the user's client: a promise of its rows that can be cancelled
 * while the server runs it. The queries of the `postgres` npm package and of
 * `Bun.sql` are both.
 */
export interface PostgresQuery extends PromiseLike<readonly unknown[]> {
  /** Asks the server to cancel the query; the query then rejects. */
  cancel(): unknown;
}

/** The transaction handle that `begin` passes to its callback. */
export interface PostgresTransaction {
  /**
   * Runs `query` with `$1`, `$2`, ... bound to `params` (a plain query string
   * with several statements when there are no parameters).
   */
  unsafe(query: string, params?: string[]): PostgresQuery;
}

/**
 * The part of a PostgreSQL client this module uses: the `sql` instance of the
 * `postgres` npm package (porsager/postgres) or of `Bun.sql` satisfies it as
 * it is.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { postgresLocks } from "@lockkit/filelock/postgres";
 *
 * const sql = postgres("postgres://app@db.internal/app");
 * const locks = postgresLocks(sql);
 * ```
 */
export interface PostgresClient {
  /**
   * Runs `fn` in a transaction on a connection of the pool, which is the
   * callback's alone until `fn` settles: COMMIT when it resolves, ROLLBACK
   * when it rejects; the returned promise rejects as soon as that connection
   * closes.
   */
  begin(fn: (tx: PostgresTransaction) => Promise<unknown>): PromiseLike<unknown>;
  /** Runs `query` on any connection of the pool. */
  unsafe(query: string, params?: string[]): PostgresQuery;
}

/** Options of {@linkcode postgresLocks}. */
export interface PostgresLocksOptions {
  /**
   * How long, in ms, a holder that stops answering (paused, partitioned)
   * keeps its lock before the server ends its session and a contender may
   * take it. Between 100 and 2^31 − 1; default 30 000. The holder sends a
   * heartbeat every third of it.
   */
  leaseMs?: number;
  /**
   * The table of fencing tokens, `name` or `schema.name`; created when it is
   * missing. Default `"lockkit_fences"`.
   */
  fenceTable?: string;
}

/** Options of `acquire`, `tryAcquire` and `withLock` of {@linkcode PostgresLocks}. */
export interface PostgresLockOptions {
  /** Take a shared lock; default `false` (exclusive). */
  shared?: boolean;
  /**
   * Milliseconds to wait; default `Infinity`; `0` makes one attempt, then
   * `LockTimeoutError`. The wait happens in the server.
   */
  timeout?: number;
  /** Aborting ends the wait in the server and rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Called once when the held lock is lost (its session ended: a pause longer
   * than the lease, a network failure, a server restart), with a `LockError`
   * of code `ECOMPROMISED`. Default: a warning on the console. `lock.signal`
   * aborts at the same moment.
   */
  onCompromised?: (error: LockError) => void;
}

/**
 * A lock held in PostgreSQL. There is no synchronous release (a network round
 * trip cannot be synchronous): release it with `release()` or `await using`.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { postgresLocks } from "@lockkit/filelock/postgres";
 *
 * const locks = postgresLocks(postgres("postgres://app@db.internal/app"));
 * await using lock = await locks.acquire("nightly-report");
 * console.log(lock.fence); // 42n: pass it to the resource you write to
 * ```
 */
export interface PostgresLock extends AsyncDisposable {
  /** The lock's name (called `path` as in the file API). */
  readonly path: string;
  /** Whether this is a shared lock. */
  readonly shared: boolean;
  /** Always `"postgres"`. */
  readonly backend: "postgres";
  /** Whether it has been released (or was lost and then released). */
  readonly released: boolean;
  /**
   * The fencing token: larger than the fence of every earlier holder of this
   * name, in every client. A resource that refuses writes carrying a fence
   * lower than the last one it accepted is safe from holders that lost the
   * lock without knowing it.
   */
  readonly fence: bigint;
  /** Aborts (with the `ECOMPROMISED` error) when the lock is lost. */
  readonly signal: AbortSignal;
  /**
   * Releases the lock; idempotent. Rejects with a `LockError` of code
   * `ECOMPROMISED` when the lock was lost before it was released.
   */
  release(): Promise<void>;
}

/** The lock operations on one client, returned by {@linkcode postgresLocks}. */
export interface PostgresLocks {
  /**
   * Takes the lock `name`, waiting in the server until it is free, the
   * timeout passes (`LockTimeoutError`) or the signal aborts (rejects with
   * `signal.reason`).
   */
  acquire(name: string, options?: PostgresLockOptions): Promise<PostgresLock>;
  /**
   * One attempt that never waits for the lock: the lock, or `null` when
   * someone else holds it. `timeout` and `signal` are ignored.
   */
  tryAcquire(name: string, options?: PostgresLockOptions): Promise<PostgresLock | null>;
  /**
   * Runs `fn` while holding the lock `name` and releases it afterwards, also
   * when `fn` throws. Rejects with `ECOMPROMISED` if the lock was lost
   * meanwhile: pass `lock.signal` to the work to stop it early.
   */
  withLock<T>(
    name: string,
    fn: (lock: PostgresLock) => T | Promise<T>,
    options?: PostgresLockOptions,
  ): Promise<T>;
}
