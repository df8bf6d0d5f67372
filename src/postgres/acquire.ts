/**
 * Taking the lock inside a session's transaction (docs/architecture.md,
 * "PostgreSQL"): the wait in the server, the fence and the session-level
 * lock, the check that the holding transaction runs on the session that
 * waited (else a transaction-pooling proxy is in the way), and the timeout
 * error that names the holders. The session decides when a statement may be
 * sent (`turn`); this module decides which.
 *
 * @module
 */

import { LockError, LockTimeoutError } from "../errors.ts";
import { acquireError, describe, LOCK_NOT_AVAILABLE, QUERY_CANCELED, sqlState } from "./errors.ts";
import { keyColumns } from "./keys.ts";
import { firstRow, rowsOf, SessionEnded, settleAll } from "./promises.ts";
import {
  AFTER_TIMEOUT,
  commitAndHold,
  fenceAndSessionLock,
  HEARTBEAT,
  HOLDERS,
  NO_LOCK_TIMEOUT,
  waitSettings,
  waitStatement,
} from "./statements.ts";
import type { PostgresClient, PostgresQuery, PostgresTransaction } from "./types.ts";

/** What one acquisition asks for. */
export interface SessionRequest {
  readonly sql: PostgresClient;
  readonly name: string;
  readonly key: bigint;
  readonly shared: boolean;
  readonly leaseMs: number;
  /** The quoted fence table. */
  readonly fenceTable: string;
  /** `"try"`: one attempt, `null` when busy; `"wait"`: wait up to `timeout`. */
  readonly attempt: "wait" | "try";
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
}

/** What taking the lock needs of its session. */
export interface AcquireContext {
  readonly request: SessionRequest;
  /** When the wait must end (`performance.now()`), or `Infinity`. */
  readonly deadline: number;
  /**
   * The transaction to send on, from a fresh turn of the event loop; rejects
   * with a `SessionEnded` once `begin()` has settled.
   */
  turn(): Promise<PostgresTransaction>;
  /** The wait just sent (an abort cancels it), or `undefined` once it answered. */
  waiting(query: PostgresQuery | undefined): void;
}

/** The lock, taken. */
export interface Taken {
  readonly fence: bigint;
  /** The server session (backend pid) that holds it. */
  readonly pid: number;
  /** The send time of the last answered statement plus the lease (`performance.now()`). */
  readonly validUntil: number;
}

/**
 * Takes the lock in the context's transaction: the grant, or `null` when a
 * `try` found it busy; throws `signal.reason`, a `LockTimeoutError`, a
 * `LockError` or the client's error. After a failure once the lock may have
 * been granted, the session holds no advisory lock any more.
 */
export function acquireLock(context: AcquireContext): Promise<Taken | null> {
  return new Acquisition(context).run();
}

/** One acquisition's steps, and the server session that waited. */
class Acquisition {
  readonly #context: AcquireContext;
  readonly #request: SessionRequest;
  #pid = 0;

  constructor(context: AcquireContext) {
    this.#context = context;
    this.#request = context.request;
  }

  /**
   * The wait and the fence; `null` when a `try` found the lock busy. A wait
   * that may last sends the fence step right behind it (it runs once the
   * lock is granted, and fails harmlessly in the aborted transaction when the
   * wait fails): two round trips in all, with `begin()`'s BEGIN. A single
   * attempt sends it only once the lock is held.
   */
  async run(): Promise<Taken | null> {
    const { shared, leaseMs, attempt, signal } = this.#request;
    const left = this.#context.deadline - performance.now();
    const once = attempt === "try" || left < 1;
    let tx = await this.#context.turn();
    const settings = tx.unsafe(waitSettings(once || left === Infinity ? 0 : left, leaseMs));
    const wait = tx.unsafe(waitStatement(this.#request.key, shared, once ? "try" : "wait"));
    this.#context.waiting(wait);
    if (signal?.aborted) wait.cancel();
    let sentAt = performance.now();
    const fenceStep = once ? [] : this.#fenceStep(tx);
    const [settled, waited, ...fenced] = await settleAll([settings, wait, ...fenceStep]);
    this.#context.waiting(undefined);
    const row = await this.#waited(settled, waited);
    if (once) {
      if (row.held !== true) {
        if (attempt === "try") return null;
        throw await this.#timedOut(false);
      }
      if (signal?.aborted) throw signal.reason;
      tx = await this.#context.turn();
      sentAt = performance.now();
      fenced.push(...(await settleAll(this.#fenceStep(tx))));
    }
    let fence: bigint;
    try {
      fence = this.#fenced(fenced);
      if (signal?.aborted) throw signal.reason;
      if (performance.now() - sentAt > leaseMs / 3) {
        // A long wait: the server's idle clock started when the fence step
        // ran, later than it was sent; confirm the session with a heartbeat.
        tx = await this.#context.turn();
        sentAt = performance.now();
        this.#checkPid(firstRow(await tx.unsafe(HEARTBEAT)).pid);
      }
    } catch (error) {
      await this.#unlockAll();
      throw error;
    }
    return { fence, pid: this.#pid, validUntil: sentAt + leaseMs };
  }

  /** The wait's answer: its row; a timeout, a cancel, any other error thrown as such. */
  async #waited(
    settled: PromiseSettledResult<readonly unknown[]>,
    waited: PromiseSettledResult<readonly unknown[]>,
  ): Promise<Record<string, unknown>> {
    const { signal, name } = this.#request;
    if (signal?.aborted) {
      // The fence step may have run behind a wait that won the race with the cancel.
      if (waited.status === "fulfilled") await this.#unlockAll();
      throw signal.reason;
    }
    rowsOf(settled);
    let row: Record<string, unknown>;
    try {
      row = firstRow(rowsOf(waited));
    } catch (error) {
      const state = sqlState(error);
      if (state === LOCK_NOT_AVAILABLE) throw await this.#timedOut(true);
      if (state === QUERY_CANCELED) {
        throw acquireError(new Error(`the wait was cancelled: ${describe(error)}`), name);
      }
      throw error;
    }
    this.#pid = Number(row.pid);
    return row;
  }

  /**
   * Once the lock is held (transaction level): the fence, the session-level
   * lock, COMMIT and the holding transaction, and the check that this
   * session holds the lock now.
   */
  #fenceStep(tx: PostgresTransaction): PostgresQuery[] {
    const { key, shared, leaseMs, name, fenceTable } = this.#request;
    return [
      // Only shared holders update one fence row at the same time.
      ...(shared ? [tx.unsafe(NO_LOCK_TIMEOUT)] : []),
      tx.unsafe(fenceAndSessionLock(fenceTable, key, shared), [name]),
      tx.unsafe(commitAndHold(leaseMs)),
      tx.unsafe(HEARTBEAT),
    ];
  }

  /**
   * The fence, once the fence step's answers show the session-level lock
   * taken, and the holding transaction on the session that took it.
   */
  #fenced(results: PromiseSettledResult<readonly unknown[]>[]): bigint {
    const [locked, , holding] = results.slice(-3);
    const row = firstRow(rowsOf(locked));
    for (const result of results) rowsOf(result);
    const pid = firstRow(rowsOf(holding)).pid;
    if (Number(pid) !== this.#pid) {
      throw new LockError({
        code: "EUNSUPPORTED",
        path: this.#request.name,
        detail: `server session ${this.#pid} took the lock, but after its transaction the ` +
          `connection leads to session ${String(pid)}: is a transaction-pooling proxy ` +
          "(PgBouncer, pgdog) between the client and the server? Connect to PostgreSQL " +
          "directly or through a session-pooling proxy",
      });
    }
    if (row.held !== true) throw new Error("the session-level advisory lock was not granted");
    return BigInt(String(row.fence));
  }

  /** A heartbeat answered by a session other than ours means the lock is not ours. */
  #checkPid(pid: unknown): void {
    if (Number(pid) !== this.#pid) {
      throw new Error(`the heartbeat was answered by another session (${String(pid)})`);
    }
  }

  /** The timeout error, naming the holders (read after rolling back the failed wait). */
  async #timedOut(failed: boolean): Promise<LockTimeoutError> {
    const { name, key, shared, timeout } = this.#request;
    let holders = "";
    try {
      const tx = await this.#context.turn();
      const { classid, objid } = keyColumns(key);
      const queries = failed
        ? [tx.unsafe(AFTER_TIMEOUT), tx.unsafe(HOLDERS, [classid, objid])]
        : [tx.unsafe(HOLDERS, [classid, objid])];
      const rows = rowsOf((await settleAll(queries)).at(-1)!);
      holders = rows.map((row) => {
        const r = row as Record<string, unknown>;
        const what = [
          r.application ? `application '${String(r.application)}'` : "",
          r.client ? `client ${String(r.client)}` : "",
          r.mode === "ShareLock" ? "shared" : "exclusive",
        ].filter((part) => part !== "");
        return `PostgreSQL session ${String(r.pid)} (${what.join(", ")})`;
      }).join(", ");
    } catch (error) {
      if (error instanceof SessionEnded) throw error;
      // Who holds it is a courtesy: the timeout stands without it.
    }
    const what = `the ${shared ? "shared" : "exclusive"} lock`;
    const detail = timeout === 0
      ? `${what} is held${holders === "" ? "" : ` by ${holders}`}`
      : `timed out after ${timeout} ms waiting for ${what}${
        holders === "" ? "" : `, held by ${holders}`
      }`;
    return new LockTimeoutError(name, detail);
  }

  /**
   * After a failure once the lock may have been granted: whatever the state
   * of the transaction, end it, drop every advisory lock of the session, and
   * open an empty one for `begin()` to roll back, so that nothing of the lock
   * goes back to the pool.
   */
  async #unlockAll(): Promise<void> {
    let tx: PostgresTransaction;
    try {
      tx = await this.#context.turn();
    } catch {
      return; // The session ended, and its locks with it.
    }
    await settleAll([tx.unsafe("ROLLBACK; SELECT pg_advisory_unlock_all(); BEGIN")]);
  }
}
