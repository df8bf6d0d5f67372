/**
 * Holders in words, for error messages and the CLI.
 *
 * @module
 */

import { hostName, processId } from "../ffi/node_process.ts";
import type { LockHolder } from "./types.ts";

let host: string | undefined | null = null;

/** Whether `holder` is this very process: our PID on our host. */
export function isThisProcess(holder: LockHolder): boolean {
  if (holder.pid !== processId) return false;
  if (host === null) host = hostName();
  return holder.hostname === undefined || holder.hostname === host;
}

/**
 * One holder: "pid 123 on host vm since 2026-11-23T10:00:00.000Z (pidfile,
 * deno)", or "this process (pid 123) ..." when it is ours: a lock is not
 * reentrant, and waiting for our own lock is the mistake to point at.
 */
export function describeHolder(holder: LockHolder): string {
  const parts = [isThisProcess(holder) ? `this process (pid ${holder.pid})` : `pid ${holder.pid}`];
  if (holder.hostname !== undefined) parts.push(`on host ${holder.hostname}`);
  if (holder.since !== undefined) parts.push(`since ${holder.since}`);
  const notes: string[] = [holder.backend, holder.shared ? "shared" : "exclusive"];
  if (holder.runtime !== undefined) notes.push(holder.runtime);
  if (holder.alive === false) notes.push("not running: stale");
  return `${parts.join(" ")} (${notes.join(", ")})`;
}

/** "held by pid 1 (...) and pid 2 (...)", or `fallback` when nobody is known. */
export function describeHolders(holders: readonly LockHolder[], fallback: string): string {
  if (holders.length === 0) return fallback;
  return `held by ${holders.map(describeHolder).join(" and ")}`;
}
