/**
 * Running the command under the lock: spawning it, passing SIGINT and SIGTERM
 * on, and its exit code (128+N when it dies of signal N), as `flock(1)` does.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import process from "node:process";
import type { CliOutput } from "./report.ts";
import { EX_OSERR, EX_UNAVAILABLE } from "./exit_codes.ts";
import { readEnvironment } from "../../ffi/runtime.ts";

/** The argv that runs `command` through the shell (`$SHELL`, or `/bin/sh`; `cmd.exe` on Windows). */
export function shellArgv(command: string): string[] {
  if (process.platform === "win32") {
    return [readEnvironment("ComSpec") ?? "cmd.exe", "/d", "/s", "/c", command];
  }
  return [readEnvironment("SHELL") || "/bin/sh", "-c", command];
}

/**
 * Runs the command with the lock held; resolves to its exit code (128+N for
 * signal N). `lockDescriptor`, where given, is passed to the command as its
 * descriptor 3 (where `flock(1)` usually leaves it too), so that the command
 * holds the lock as well: if this process is killed, the lock stays held
 * until the command ends.
 */
export async function runCommand(
  argv: string[],
  out: CliOutput,
  verbose: boolean,
  lockDescriptor?: number,
): Promise<number> {
  if (verbose) out.stdout(`filelock: executing ${argv[0]}\n`);
  let child: ChildProcess | undefined;
  const early: ("SIGINT" | "SIGTERM")[] = [];
  // process.kill, not child.kill: Deno's child.kill makes the child's exit
  // report the signal sent, even when the child caught it and exited normally.
  const forward = (signal: "SIGINT" | "SIGTERM") => () => {
    if (child === undefined) early.push(signal);
    else if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, signal);
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
    return await new Promise<number>((resolve) => {
      try {
        child = spawn(argv[0], argv.slice(1), {
          stdio: lockDescriptor === undefined
            ? "inherit"
            : ["inherit", "inherit", "inherit", lockDescriptor],
        });
      } catch (error) {
        // A runtime that refuses at once (a missing Deno permission): never a crash under the lock.
        out.stderr(`filelock: failed to execute ${argv[0]}: ${(error as Error).message}\n`);
        resolve(EX_UNAVAILABLE);
        return;
      }
      const started = child;
      started.on("error", (error: Error & { code?: string }) => {
        const reason = error.code === "ENOENT"
          ? "No such file or directory"
          : error.code === "EACCES"
          ? "Permission denied"
          : error.message;
        out.stderr(`filelock: failed to execute ${argv[0]}: ${reason}\n`);
        resolve(EX_UNAVAILABLE);
      });
      started.on("exit", (code, signal) => {
        if (signal !== null) {
          const number = (constants.signals as Record<string, number>)[signal] ?? 0;
          resolve(128 + number);
        } else {
          resolve(code ?? EX_OSERR);
        }
      });
      if (started.pid !== undefined) {
        for (const signal of early) process.kill(started.pid, signal);
      }
    });
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}
