/**
 * A lock held in PostgreSQL, as the caller sees it: its fence, the signal
 * that aborts when it is lost, the report of a loss, and the release.
 *
 * @module
 */

import { LockError } from "../errors.ts";
import { describe } from "./errors.ts";
import type { Granted, Session } from "./session.ts";
import type { PostgresLock } from "./types.ts";

function warnCompromised(error: LockError): void {
  console.warn(`filelock: ${error.message}`);
}

/** A held PostgreSQL lock. */
export class PgLock implements PostgresLock {
  readonly path: string;
  readonly shared: boolean;
  readonly backend = "postgres" as const;
  readonly fence: bigint;
  readonly #session: Session;
  readonly #controller = new AbortController();
  readonly #onCompromised: (error: LockError) => void;
  #lost: LockError | undefined;
  #release: Promise<void> | undefined;
  #released = false;

  constructor(
    name: string,
    shared: boolean,
    session: Session,
    granted: Granted,
    onCompromised: ((error: LockError) => void) | undefined,
  ) {
    this.path = name;
    this.shared = shared;
    this.fence = granted.fence;
    this.#session = session;
    this.#onCompromised = onCompromised ?? warnCompromised;
    session.onLost = (why, cause) => this.#compromised(why, cause);
  }

  /** Aborts, with the `ECOMPROMISED` error as its reason, when the lock is lost. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get released(): boolean {
    return this.#released;
  }

  release(): Promise<void> {
    this.#release ??= this.#lost !== undefined
      ? Promise.reject(this.#lost)
      : this.#session.release().catch((error) => {
        throw this.#lost ?? error;
      });
    this.#release.then(() => (this.#released = true), () => (this.#released = true));
    return this.#release;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  #compromised(why: string, cause: unknown): void {
    if (this.#lost !== undefined) return;
    const error = new LockError({
      code: "ECOMPROMISED",
      path: this.path,
      cause,
      detail: `the lock (fence ${this.fence}) was lost: ${why}` +
        (cause === undefined ? "" : ` (${describe(cause)})`) +
        `; PostgreSQL session ${this.#session.pid} no longer holds it, and another client may`,
    });
    this.#lost = error;
    this.#controller.abort(error);
    this.#onCompromised(error);
  }
}
