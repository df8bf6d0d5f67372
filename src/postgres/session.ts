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
 * Which statements take the lock is `acquire.ts`'s to decide, the heartbeat
 * and the watchdog `lease.ts`'s; both send only through `#turn`.
 *
 * @module
 */

import { clearTimeout, type setTimeout } from "node:timers";
import { LockTimeoutError } from "../errors.ts";
import { acquireLock, type SessionRequest, type Taken } from "./acquire.ts";
import { acquireError } from "./errors.ts";
import { Lease } from "./lease.ts";
import {
  backgroundTimeout,
  Deferred,
  firstRow,
  nextTurn,
  rowsOf,
  SessionEnded,
  settleAll,
} from "./promises.ts";
import { unlockStatement } from "./statements.ts";
import type { PostgresQuery, PostgresTransaction } from "./types.ts";

/**
 * How long past its deadline an acquisition still waits for a connection of
 * the pool, so that a zero timeout still gets its one attempt.
 */
export const CONNECT_GRACE_MS = 1000;

/** The longest delay a timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
  /** The heartbeat and the watchdog, while the lock is held. */
  #lease: Lease | undefined;
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
    this.#lease?.stop();
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
      const taken = await acquireLock({
        request: this.#request,
        deadline: this.#deadline,
        turn: () => this.#turn(),
        waiting: (query) => {
          this.#waitQuery = query;
        },
      });
      if (taken === null) this.#fail({ value: null });
      else this.#hold(taken);
    } catch (error) {
      const { signal, name } = this.#request;
      const aborted = signal?.aborted === true && error === signal.reason;
      this.#fail({ error: aborted ? error : acquireError(error, name) });
    }
  }

  /** The acquisition ended without the lock: roll back, and answer once `begin()` settled. */
  #fail(outcome: { value: null } | { error: unknown }): void {
    this.#phase = "failed";
    this.#stopWaiting();
    this.#outcome = outcome;
    if ("error" in outcome) this.#leave("rollback", outcome.error);
    else this.#leave("commit");
  }

  #hold(taken: Taken): void {
    this.#stopWaiting();
    if (this.#ended) return; // The connection closed first: #onEnded has answered.
    this.#phase = "held";
    this.#pid = taken.pid;
    this.#lease = new Lease({
      leaseMs: this.#request.leaseMs,
      pid: taken.pid,
      held: () => this.#phase === "held",
      turn: () => this.#turn(),
      lose: (why, cause) => this.#lose(why, cause),
    }, taken.validUntil);
    this.#lease.start();
    this.#acquired.resolve({ fence: taken.fence, pid: taken.pid });
  }

  /** `begin()` settled: the connection is no longer ours. */
  #onEnded(error: unknown): void {
    this.#ended = true;
    this.#stopWaiting();
    this.#lease?.stop();
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

  /**
   * The held lock is lost: stop, and tell the lock. Nothing more is sent; if
   * the session still exists, the server ends it within the lease.
   */
  #lose(why: string, cause: unknown): void {
    if (this.#phase !== "held" && this.#phase !== "releasing") return;
    this.#phase = "lost";
    this.#lease?.stop();
    this.onLost?.(why, cause);
  }
}
