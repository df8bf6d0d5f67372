/**
 * Holders in words, for error messages and the CLI.
 *
 * @module
 */

import type { LockHolder } from "./types.ts";

/** One holder: "pid 123 on host vm since 2026-11-23T10:00:00.000Z (pidfile, deno)". */
export function describeHolder(holder: LockHolder): string {
  const parts = [`pid ${holder.pid}`];
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
