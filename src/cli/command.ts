/**
 * Running the command under the lock: starting it, passing SIGINT and SIGTERM
 * on, and its exit code (128+N when it dies of signal N), as `flock(1)` does.
 *
 * @module
 */

import { constants } from "node:os";
import process from "node:process";
import type { CliOutput } from "./report.ts";
import { EX_OSERR, EX_UNAVAILABLE } from "./exit_codes.ts";
import { strerror } from "./report.ts";
import { readEnvironment } from "../../ffi/runtime.ts";
import { type Child, spawnChild } from "../../ffi/spawn.ts";

/**
 * The argv that runs `command` through the shell (`$SHELL`, or `/bin/sh`
 * where it is unset or Deno may not read it; `cmd.exe` on Windows).
 */
export function shellArgv(command: string): string[] {
  if (process.platform === "win32") {
    return [readEnvironment("ComSpec") ?? "cmd.exe", "/d", "/s", "/c", command];
  }
  return [readEnvironment("SHELL") || "/bin/sh", "-c", command];
}

/**
 * Runs the command with the lock held; resolves to its exit code (128+N for
 * signal N). The command shares the standard streams and gets each of
 * `descriptors` as the same number (see `spawnChild`): the one that holds the
 * lock, so that if this process is killed the lock stays held until the
 * command ends, and those this process inherited.
 */
export async function runCommand(
  argv: string[],
  out: CliOutput,
  verbose: boolean,
  descriptors: readonly number[],
): Promise<number> {
  if (verbose) out.stdout(`filelock: executing ${argv[0]}\n`);
  let child: Child | undefined;
  const early: ("SIGINT" | "SIGTERM")[] = [];
  const forward = (signal: "SIGINT" | "SIGTERM") => () => {
    if (child === undefined) early.push(signal);
    else child.kill(signal);
  };
  const onInt = forward("SIGINT");
  const onTerm = forward("SIGTERM");
  // Listen before the command exists, and let runtimes that bind signal
  // listeners on the event loop (Deno) finish: a signal must never find us
  // without a listener once the command runs, or we would die and orphan it.
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  await new Promise((resolve) => setTimeout(resolve, 0));
  try {
    const started = spawnChild(argv, descriptors);
    child = started;
    if (started.pid !== undefined) {
      for (const signal of early) started.kill(signal);
    }
    const exit = await started.exit;
    if ("error" in exit) {
      // Never a crash under the lock: a command that is missing, not executable, or refused.
      const reason = exit.error === "ENOENT" || exit.error === "EACCES"
        ? strerror(exit.error)
        : exit.message;
      out.stderr(`filelock: failed to execute ${argv[0]}: ${reason}\n`);
      return EX_UNAVAILABLE;
    }
    if (exit.signal !== null) {
      return 128 + ((constants.signals as Record<string, number>)[exit.signal] ?? 0);
    }
    return exit.code ?? EX_OSERR;
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}
