/**
 * One lock's session: a transaction on a connection of the user's pool that
 * waits for the lock in the server, takes the fence, holds the lock with a
 * heartbeat and releases it (docs/architecture.md, "PostgreSQL").
 *
 * The connection comes from `sql.begin()`, not `sql.reserve()`: `begin()`
 * rejects as soon as its connection closes, which is how a lost session is
 * noticed without writing to it. Two rules keep the `postgres` package
 * (3.4.9) from crashing the process, which it does (an uncaught TypeError)
 * when anything is written to a connection after it closed
 * (porsager/postgres#1208), including the COMMIT or ROLLBACK that `begin()`
 * itself sends when its callback settles:
 *
 * 1. every statement is sent from a fresh turn of the event loop, and only
 *    while `begin()` has not settled (`#turn`);
 * 2. the callback settles only under the same condition; once the connection
 *    has closed it never settles (`#leave`).
 *
 * A closed connection's close handler runs before the next turn, and
 * `begin()`'s rejection reaches us in the microtasks right after it, so a
 * statement sent under rule 1 goes to a connection that is still open (the
 * client drops a write that a later close overtakes).
 *
 * @module
 */

import { clearTimeout, setImmediate, setTimeout } from "node:timers";
import { LockError, LockTimeoutError } from "../errors.ts";
import { acquireError, describe, LOCK_NOT_AVAILABLE, QUERY_CANCELED, sqlState } from "./errors.ts";
import { keyColumns } from "./keys.ts";
import {
  AFTER_TIMEOUT,
  commitAndHold,
  fenceAndSessionLock,
  HEARTBEAT,
  HOLDERS,
  NO_LOCK_TIMEOUT,
  unlockStatement,
  waitSettings,
  waitStatement,
} from "./statements.ts";
import type { PostgresClient, PostgresQuery, PostgresTransaction } from "./types.ts";

/**
 * How long past its deadline an acquisition still waits for a connection of
 * the pool, so that a zero timeout still gets its one attempt.
 */
export const CONNECT_GRACE_MS = 1000;

/** The longest delay a timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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

/** A granted lock. */
export interface Granted {
  readonly fence: bigint;
  /** The server session (backend pid) that holds it. */
  readonly pid: number;
}

/**
 * `connecting`: waiting for a connection; `waiting`: in the server;
 * `held`; `releasing`; `released`; `lost`; `failed`: the acquisition ended
 * without the lock; `abandoned`: given up before a connection came.
 */
type Phase =
  | "connecting"
  | "waiting"
  | "held"
  | "releasing"
  | "released"
  | "lost"
  | "failed"
  | "abandoned";

/** A settled-once promise with its resolvers. */
class Deferred<T> {
  readonly promise: Promise<T>;
  settled = false;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.#resolve(value);
  }

  reject(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.#reject(error);
  }
}

/** The connection closed (or the transaction ended) under us. */
class SessionEnded extends Error {
  constructor(cause: unknown) {
    super("the PostgreSQL session ended", { cause });
    this.name = "SessionEnded";
  }
}

/** Resolves on the next turn of the event loop, after pending I/O callbacks. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A timer that does not keep the process alive. */
function backgroundTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const timer = setTimeout(fn, Math.max(0, ms));
  timer.unref();
  return timer;
}

function firstRow(rows: readonly unknown[]): Record<string, unknown> {
  const row = rows[0];
  if (typeof row !== "object" || row === null) throw new Error("PostgreSQL returned no row");
  return row as Record<string, unknown>;
}

/** Runs the queries, already sent, to completion; none rejects unobserved. */
function settleAll(
  queries: readonly PostgresQuery[],
): Promise<PromiseSettledResult<readonly unknown[]>[]> {
  return Promise.allSettled(queries.map((query) => Promise.resolve(query)));
}

function rowsOf(result: PromiseSettledResult<readonly unknown[]>): readonly unknown[] {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}

/** One lock's transaction, from the wait to the release. */
export class Session {
  readonly #request: SessionRequest;
  #phase: Phase = "connecting";
  #tx: PostgresTransaction | undefined;
  /** `begin()` has settled: the connection is no longer ours. */
  #ended = false;
  readonly #endedDeferred = new Deferred<void>();
  /** Settles the `begin()` callback: resolve → COMMIT, reject → ROLLBACK. */
  readonly #exit = new Deferred<void>();
  /** The acquisition's answer: the grant, `null` (busy, `try`), or an error. */
  readonly #acquired = new Deferred<Granted | null>();
  /** What the acquisition came to, handed over once `begin()` has settled. */
  #outcome: { value: Granted | null } | { error: unknown } | undefined;
  #deadline = Infinity;
  #pid = 0;
  #waitQuery: PostgresQuery | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdogTimer: ReturnType<typeof setTimeout> | undefined;
  /** The holder may believe it holds the lock until then (`performance.now()`). */
  #validUntil = 0;
  #release: Promise<void> | undefined;
  /** Called once when the held lock is lost, with why. */
  onLost: ((why: string, cause: unknown) => void) | undefined;

  constructor(request: SessionRequest) {
    this.#request = request;
  }

  /** The server session that holds the lock. */
  get pid(): number {
    return this.#pid;
  }

  /** Whether the lock has been released. */
  get released(): boolean {
    return this.#phase === "released";
  }

  /**
   * Takes the lock: resolves with the grant, or `null` when a `try` found it
   * busy; rejects with `signal.reason`, a `LockTimeoutError` or a `LockError`.
   * A failed acquisition settles only once its transaction has ended: nothing
   * of it is left waiting in the server.
   */
  start(): Promise<Granted | null> {
    const { signal, timeout, sql } = this.#request;
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.#deadline = timeout === Infinity ? Infinity : performance.now() + timeout;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    // (A timer longer than 2^31 - 1 ms would fire at once: such a timeout is as good as none.)
    if (timeout + CONNECT_GRACE_MS <= MAX_TIMER_MS) {
      this.#connectTimer = backgroundTimeout(() => {
        if (this.#phase !== "connecting") return;
        this.#giveUp(
          new LockTimeoutError(
            this.#request.name,
            `timed out after ${timeout} ms waiting for a connection of the pool`,
          ),
        );
      }, timeout + CONNECT_GRACE_MS);
    }
    let begun: PromiseLike<unknown>;
    try {
      begun = sql.begin((tx) => {
        this.#tx = tx;
        void this.#run();
        return this.#exit.promise;
      });
    } catch (error) {
      this.#stopWaiting();
      return Promise.reject(acquireError(error, this.#request.name));
    }
    Promise.resolve(begun).then(() => this.#onEnded(undefined), (error) => this.#onEnded(error));
    return this.#acquired.promise;
  }

  /**
   * Releases the lock: unlock, then COMMIT, resolved once the connection is
   * back in the pool. Rejects (and reports the loss) when the lock turns out
   * to be lost. Idempotent.
   */
  release(): Promise<void> {
    this.#release ??= this.#releaseOnce();
    return this.#release;
  }

  async #releaseOnce(): Promise<void> {
    if (this.#phase !== "held") throw new Error(`cannot release a lock that is ${this.#phase}`);
    this.#phase = "releasing";
    this.#stopTimers();
    let unlocked: Promise<PromiseSettledResult<readonly unknown[]>[]>;
    try {
      const tx = await this.#turn();
      const { key, shared } = this.#request;
      unlocked = settleAll([tx.unsafe(unlockStatement(key, shared))]);
    } catch (error) {
      this.#lose("its session ended before the release", error);
      throw error;
    }
    // COMMIT right behind the unlock: same turn, the connection still ours.
    this.#exit.resolve();
    let released: unknown;
    try {
      released = firstRow(rowsOf((await unlocked)[0])).released;
    } catch (error) {
      this.#lose("its session ended before the release", error);
      throw error;
    }
    if (released !== true) {
      const error = new Error("pg_advisory_unlock found no lock held by this session");
      this.#lose("its session no longer held it at the release", error);
      throw error;
    }
    this.#phase = "released";
    await this.#endedDeferred.promise;
  }

  /** Sends statements only from here: a fresh turn, while `begin()` has not settled. */
  async #turn(): Promise<PostgresTransaction> {
    await nextTurn();
    if (this.#ended || this.#tx === undefined) throw new SessionEnded(undefined);
    return this.#tx;
  }

  /**
   * Settles the `begin()` callback (COMMIT, or ROLLBACK with `error`), from a
   * fresh turn and only while the connection is ours; after it closed, never.
   */
  #leave(how: "commit" | "rollback", error?: unknown): void {
    void nextTurn().then(() => {
      if (this.#ended) return;
      if (how === "commit") this.#exit.resolve();
      else this.#exit.reject(error);
    });
  }

  /** The begin() callback's work, up to holding the lock (or failing to). */
  async #run(): Promise<void> {
    if (this.#phase === "abandoned") {
      this.#leave("commit");
      return;
    }
    this.#phase = "waiting";
    clearTimeout(this.#connectTimer);
    try {
      const granted = await this.#acquire();
      if (granted === null) this.#fail({ value: null });
      else this.#hold(granted);
    } catch (error) {
      const { signal, name } = this.#request;
      const aborted = signal?.aborted === true && error === signal.reason;
      this.#fail({ error: aborted ? error : acquireError(error, name) });
    }
  }

  /**
   * The wait and the fence; `null` when a `try` found the lock busy. A wait
   * that may last sends the fence step right behind it (it runs once the
   * lock is granted, and fails harmlessly in the aborted transaction when the
   * wait fails): two round trips in all, with `begin()`'s BEGIN. A single
   * attempt sends it only once the lock is held.
   */
  async #acquire(): Promise<Granted | null> {
    const { shared, leaseMs, attempt, signal } = this.#request;
    const left = this.#deadline - performance.now();
    const once = attempt === "try" || left < 1;
    let tx = await this.#turn();
    const settings = tx.unsafe(waitSettings(once || left === Infinity ? 0 : left, leaseMs));
    const wait = tx.unsafe(waitStatement(this.#request.key, shared, once ? "try" : "wait"));
    this.#waitQuery = wait;
    if (signal?.aborted) wait.cancel();
    let sentAt = performance.now();
    const fenceStep = once ? [] : this.#fenceStep(tx);
    const [settled, waited, ...fenced] = await settleAll([settings, wait, ...fenceStep]);
    this.#waitQuery = undefined;
    const row = await this.#waited(settled, waited);
    if (once) {
      if (row.held !== true) {
        if (attempt === "try") return null;
        throw await this.#timedOut(false);
      }
      if (signal?.aborted) throw signal.reason;
      tx = await this.#turn();
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
        tx = await this.#turn();
        sentAt = performance.now();
        this.#checkPid(firstRow(await tx.unsafe(HEARTBEAT)).pid);
      }
    } catch (error) {
      await this.#unlockAll();
      throw error;
    }
    this.#validUntil = sentAt + leaseMs;
    return { fence, pid: this.#pid };
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
      const tx = await this.#turn();
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
      tx = await this.#turn();
    } catch {
      return; // The session ended, and its locks with it.
    }
    await settleAll([tx.unsafe("ROLLBACK; SELECT pg_advisory_unlock_all(); BEGIN")]);
  }

  /** The acquisition ended without the lock: roll back, and answer once `begin()` settled. */
  #fail(outcome: { value: null } | { error: unknown }): void {
    this.#phase = "failed";
    this.#stopWaiting();
    this.#outcome = outcome;
    if ("error" in outcome) this.#leave("rollback", outcome.error);
    else this.#leave("commit");
  }

  #hold(granted: Granted): void {
    this.#stopWaiting();
    if (this.#ended) return; // The connection closed first: #onEnded has answered.
    this.#phase = "held";
    this.#armWatchdog();
    this.#scheduleHeartbeat();
    this.#acquired.resolve(granted);
  }

  /** `begin()` settled: the connection is no longer ours. */
  #onEnded(error: unknown): void {
    this.#ended = true;
    this.#stopWaiting();
    this.#stopTimers();
    this.#endedDeferred.resolve();
    switch (this.#phase) {
      case "held":
      case "releasing":
        this.#lose("its session ended", error);
        break;
      default:
        this.#answer(error);
    }
  }

  /** Hands over the acquisition's outcome, or, when there is none, why the transaction ended. */
  #answer(error: unknown): void {
    const outcome = this.#outcome;
    if (outcome === undefined) {
      this.#acquired.reject(
        acquireError(error ?? new Error("the transaction ended"), this.#request.name),
      );
    } else if ("value" in outcome) {
      this.#acquired.resolve(outcome.value);
    } else {
      this.#acquired.reject(outcome.error);
    }
  }

  /** A timeout or an abort before a connection came: answer now, commit the empty transaction later. */
  #giveUp(error: unknown): void {
    this.#phase = "abandoned";
    this.#stopWaiting();
    this.#acquired.reject(error);
  }

  readonly #onAbort = (): void => {
    const reason = this.#request.signal?.reason;
    if (this.#phase === "connecting") this.#giveUp(reason);
    else if (this.#phase === "waiting") this.#waitQuery?.cancel();
  };

  #stopWaiting(): void {
    clearTimeout(this.#connectTimer);
    this.#request.signal?.removeEventListener("abort", this.#onAbort);
  }

  #stopTimers(): void {
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#watchdogTimer);
  }

  /** The watchdog: past `validUntil` without a newer answer, the server may have ended the session. */
  #armWatchdog(): void {
    clearTimeout(this.#watchdogTimer);
    this.#watchdogTimer = backgroundTimeout(() => {
      if (this.#phase === "held" && performance.now() >= this.#validUntil) {
        this.#lose(
          `sent no heartbeat the server answered for ${this.#request.leaseMs} ms`,
          undefined,
        );
      }
    }, this.#validUntil - performance.now());
  }

  #scheduleHeartbeat(): void {
    this.#heartbeatTimer = backgroundTimeout(
      () => void this.#heartbeat(),
      Math.floor(this.#request.leaseMs / 3),
    );
  }

  async #heartbeat(): Promise<void> {
    if (this.#phase !== "held") return;
    if (performance.now() >= this.#validUntil) {
      this.#lose(
        `sent no heartbeat the server answered for ${this.#request.leaseMs} ms`,
        undefined,
      );
      return;
    }
    let pid: unknown;
    const sentAt = performance.now();
    try {
      const tx = await this.#turn();
      if (this.#phase !== "held") return;
      pid = firstRow(await tx.unsafe(HEARTBEAT)).pid;
    } catch (error) {
      if (this.#phase === "held") this.#lose("its session ended", error);
      return;
    }
    if (this.#phase !== "held") return;
    if (Number(pid) !== this.#pid) {
      this.#lose(`the heartbeat was answered by another session (${String(pid)})`, undefined);
      return;
    }
    this.#validUntil = sentAt + this.#request.leaseMs;
    this.#armWatchdog();
    this.#scheduleHeartbeat();
  }

  /**
   * The held lock is lost: stop, and tell the lock. Nothing more is sent; if
   * the session still exists, the server ends it within the lease.
   */
  #lose(why: string, cause: unknown): void {
    if (this.#phase !== "held" && this.#phase !== "releasing") return;
    this.#phase = "lost";
    this.#stopTimers();
    this.onLost?.(why, cause);
  }
}
