/**
 * Hooks for tests only, not exported from `mod.ts`: each one stages a race
 * or brings back what a fix removed, so that a test can show the failure it
 * guards against (docs/architecture.md, "Tests").
 *
 * @module
 */

/** How reclaim guards are named; anything but `"per-lock"` is a broken variant. */
export type GuardNaming = "per-lock" | "unshortened" | "per-holding";

/** The pidfile mode's test hooks. */
export interface PidfileTestHooks {
  /** Replaces the guarded reclaim with remove-then-create (the race the guard prevents). */
  naiveReclaim: boolean;
  /** Runs between judging a record stale and acting on it. */
  beforeReclaim: (() => void) | undefined;
  /** Runs between creating a file and writing its record. */
  afterCreate: (() => void) | undefined;
  /** Runs once a reclaim removed a stale lock file, before its guard goes. */
  afterRemove: (() => void) | undefined;
  /** `false` skips the check that the path still names the file just created. */
  verifyCreated: boolean;
  /**
   * `"unshortened"`: `<lock>.reclaim` even where it exceeds `NAME_MAX`;
   * `"per-holding"`: named after the stale holding (its token, or a
   * non-record's mtime), as before guards were named per lock and level.
   */
  guardNaming: GuardNaming;
  /** Takes an old file that is not a record for a stale one, and reclaims it. */
  reclaimNonRecords: boolean;
  /**
   * Reads the lock file through a symbolic link at the path, as Deno's
   * `node:fs` did without `--allow-all` (it drops `O_NOFOLLOW`).
   */
  followLinks: boolean;
  /**
   * Releases as before: checks the record by opening the path again (which
   * fails without a free descriptor, and is then taken for a theft) and
   * ignores a removal that failed.
   */
  naiveRelease: boolean;
  /**
   * Signal listeners as before: added with each lock and removed with the
   * last (in Deno too), removing the locks on a signal whatever other
   * listeners there are.
   */
  legacySignals: boolean;
  /** How many times the SIGINT/SIGTERM listeners were installed in this process (a count). */
  signalInstalls: number;
}

/** The hooks; their defaults are the module's real behaviour. */
export const pidfileTestHooks: PidfileTestHooks = {
  naiveReclaim: false,
  beforeReclaim: undefined,
  afterCreate: undefined,
  afterRemove: undefined,
  verifyCreated: true,
  guardNaming: "per-lock",
  reclaimNonRecords: false,
  followLinks: false,
  naiveRelease: false,
  legacySignals: false,
  signalInstalls: 0,
};
