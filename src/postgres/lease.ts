/**
 * The lease of a held lock (docs/architecture.md, "PostgreSQL"): the server
 * ends a session that sends nothing for `leaseMs` in its holding transaction,
 * so the holder sends a heartbeat every third of it, and a watchdog reports
 * the lock lost once the lease of the last answered statement has run out.
 *
 * @module
 */

import { clearTimeout, type setTimeout } from "node:timers";
import { backgroundTimeout, firstRow } from "./promises.ts";
import { HEARTBEAT } from "./statements.ts";
import type { PostgresTransaction } from "./types.ts";

/** What the lease needs of the session that holds the lock. */
export interface LeaseHolder {
  readonly leaseMs: number;
  /** The server session (backend pid) that holds the lock. */
  readonly pid: number;
  /** Whether the lock is held (not being released, lost or released). */
  held(): boolean;
  /** The transaction to send on, from a fresh turn; rejects once the session ended. */
  turn(): Promise<PostgresTransaction>;
  /** Reports the lock lost, with why. */
  lose(why: string, cause: unknown): void;
}

/** The heartbeat and the watchdog of one held lock. */
export class Lease {
  readonly #holder: LeaseHolder;
  /** The holder may believe it holds the lock until then (`performance.now()`). */
  #validUntil: number;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdogTimer: ReturnType<typeof setTimeout> | undefined;

  /** `validUntil`: the send time of the last answered statement plus the lease. */
  constructor(holder: LeaseHolder, validUntil: number) {
    this.#holder = holder;
    this.#validUntil = validUntil;
  }

  /** Arms the watchdog and schedules the first heartbeat. */
  start(): void {
    this.#armWatchdog();
    this.#scheduleHeartbeat();
  }

  /** Stops the heartbeat and the watchdog. */
  stop(): void {
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#watchdogTimer);
  }

  /** The watchdog: past `validUntil` without a newer answer, the server may have ended the session. */
  #armWatchdog(): void {
    clearTimeout(this.#watchdogTimer);
    this.#watchdogTimer = backgroundTimeout(() => {
      if (this.#holder.held() && performance.now() >= this.#validUntil) {
        this.#holder.lose(
          `sent no heartbeat the server answered for ${this.#holder.leaseMs} ms`,
          undefined,
        );
      }
    }, this.#validUntil - performance.now());
  }

  #scheduleHeartbeat(): void {
    this.#heartbeatTimer = backgroundTimeout(
      () => void this.#heartbeat(),
      Math.floor(this.#holder.leaseMs / 3),
    );
  }

  async #heartbeat(): Promise<void> {
    const holder = this.#holder;
    if (!holder.held()) return;
    if (performance.now() >= this.#validUntil) {
      holder.lose(`sent no heartbeat the server answered for ${holder.leaseMs} ms`, undefined);
      return;
    }
    let pid: unknown;
    const sentAt = performance.now();
    try {
      const tx = await holder.turn();
      if (!holder.held()) return;
      pid = firstRow(await tx.unsafe(HEARTBEAT)).pid;
    } catch (error) {
      if (holder.held()) holder.lose("its session ended", error);
      return;
    }
    if (!holder.held()) return;
    if (Number(pid) !== holder.pid) {
      holder.lose(`the heartbeat was answered by another session (${String(pid)})`, undefined);
      return;
    }
    this.#validUntil = sentAt + holder.leaseMs;
    this.#armWatchdog();
    this.#scheduleHeartbeat();
  }
}
