/**
 * Running a command under a lock on a file or directory: take the lock (or
 * say who holds it), run the command, release.
 *
 * @module
 */

import { acquire, type Lock, LockError, LockTimeoutError, tryAcquire } from "../../mod.ts";
import { missingDenoFlags } from "../../ffi/runtime.ts";
import type { Options } from "./args.ts";
import { runCommand, shellArgv } from "./command.ts";
import { inheritedToPass, lockCopy } from "./descriptors.ts";
import { errorExitCode, EX_UNAVAILABLE } from "./exit_codes.ts";
import { execInPlace } from "./no_fork.ts";
import { conflict, talkative, timedOut, timeoutMs, tookLine } from "./output.ts";
import { type CliOutput, holderText, safeInspect, startWaitingLine, strerror } from "./report.ts";

/** The lock on the file, or an exit code (conflict, timeout, error). */
async function take(options: Options, out: CliOutput): Promise<Lock | number> {
  const lockOptions = {
    shared: options.kind === "shared",
    backend: options.backend,
    removeOnRelease: options.remove,
  };
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
  let lock: Lock | null = null;
  let waitingLine: (() => void) | undefined;
  try {
    lock = tryAcquire(options.lockfile, lockOptions);
    if (lock === null) {
      const current = talkative(options, out)
        ? safeInspect(options.lockfile, options.backend)
        : undefined;
      const timeout = timeoutMs(options);
      if (timeout === 0) return conflict(options, out, options.lockfile, holderText(current));
      waitingLine = startWaitingLine(options, out, seconds, current);
      lock = await acquire(options.lockfile, { ...lockOptions, timeout });
    }
  } catch (error) {
    waitingLine?.();
    if (error instanceof LockTimeoutError) {
      return timedOut(options, out, options.lockfile, holderText({ holders: error.holders }));
    }
    if (error instanceof LockError) {
      // ELOOP here is a loop of links (the CLI followed them): say it in flock(1)'s words.
      const reason = error.code === "ELOOP" ? strerror(error.code) : error.message;
      out.stderr(`filelock: cannot lock ${options.lockfile}: ${reason}\n`);
      return errorExitCode(error);
    }
    throw error;
  }
  waitingLine?.();
  tookLine(options, out, started);
  return lock;
}

/** Runs a command under a lock on a file or directory. */
export async function lockFile(options: Options, out: CliOutput): Promise<number> {
  const argv = options.shellCommand !== undefined
    ? shellArgv(options.shellCommand)
    : options.command;
  // Deno refuses what it was not allowed: say which flag, before taking the lock. The
  // command gets the environment without --allow-env (Deno.Command passes it on).
  const missing = missingDenoFlags(options.noFork ? [] : [{ name: "run", command: argv[0] }]);
  if (missing.length > 0) {
    out.stderr(
      `filelock: Deno needs ${missing.join(" ")} to run ${argv[0]}; run it again with ${
        missing.length > 1 ? "those flags" : "that flag"
      }\n`,
    );
    return EX_UNAVAILABLE;
  }
  // What the shell passed in, read before anything of ours is open.
  const inherited = inheritedToPass();
  // -u on a file unlocks a descriptor nobody else has: as with flock(1), the command just runs.
  const lock = options.kind === "unlock" ? undefined : await take(options, out);
  if (typeof lock === "number") return lock;
  if (lock !== undefined && options.noFork) {
    return await execInPlace(lock, argv, inherited, options, out);
  }
  // The command holds the lock too (unless -o): if this process is killed, the lock stays
  // held until the command ends.
  const copy = options.close || lock === undefined ? undefined : lockCopy(lock);
  try {
    return await runCommand(
      argv,
      out,
      options.verbose,
      copy === undefined ? inherited : [...inherited, copy.fd],
    );
  } finally {
    copy?.close();
    await lock?.release();
  }
}
