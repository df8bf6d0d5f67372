/**
 * The small promise and timer pieces of a lock's session
 * (docs/architecture.md, "PostgreSQL"): a settle-once promise, the next turn
 * of the event loop, a timer that does not keep the process alive, and
 * reading the answers of queries already sent.
 *
 * @module
 */

import { setImmediate, setTimeout } from "node:timers";
import type { PostgresQuery } from "./types.ts";

/** A settled-once promise with its resolvers. */
export class Deferred<T> {
  /** Settles with the first `resolve` or `reject`. */
  readonly promise: Promise<T>;
  /** Whether `resolve` or `reject` has been called. */
  settled = false;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;

  /** An unsettled promise. */
  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Resolves the promise, unless it has settled. */
  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.#resolve(value);
  }

  /** Rejects the promise, unless it has settled. */
  reject(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.#reject(error);
  }
}

/** The connection closed (or the transaction ended) under us. */
export class SessionEnded extends Error {
  /** `cause`: why, where known. */
  constructor(cause: unknown) {
    super("the PostgreSQL session ended", { cause });
    this.name = "SessionEnded";
  }
}

/** Resolves on the next turn of the event loop, after pending I/O callbacks. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A timer that does not keep the process alive. */
export function backgroundTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
  const timer = setTimeout(fn, Math.max(0, ms));
  timer.unref();
  return timer;
}

/** The first row of a query's answer; throws when there is none. */
export function firstRow(rows: readonly unknown[]): Record<string, unknown> {
  const row = rows[0];
  if (typeof row !== "object" || row === null) throw new Error("PostgreSQL returned no row");
  return row as Record<string, unknown>;
}

/** Runs the queries, already sent, to completion; none rejects unobserved. */
export function settleAll(
  queries: readonly PostgresQuery[],
): Promise<PromiseSettledResult<readonly unknown[]>[]> {
  return Promise.allSettled(queries.map((query) => Promise.resolve(query)));
}

/** The rows of a settled query; its error, thrown, when it failed. */
export function rowsOf(result: PromiseSettledResult<readonly unknown[]>): readonly unknown[] {
  if (result.status === "rejected") throw result.reason;
  return result.value;
}
