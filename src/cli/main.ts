/**
 * `filelock`: a cross-platform `flock(1)` that says who holds the lock. It
 * takes the lock, runs a command while holding it, and releases it when the
 * command ends; exit codes follow util-linux `flock(1)`.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-ffi --allow-run --allow-env \
 *   jsr:@lockkit/filelock/cli -n /tmp/backup.lock ./backup.sh
 * ```
 *
 * @example
 * ```ts
 * import { main } from "@lockkit/filelock/cli";
 *
 * const code = await main(["--status", "/tmp/backup.lock"]);
 * console.log(code === 0 ? "free" : "held");
 * ```
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { acquire, type Lock, LockError, LockTimeoutError, probe, tryAcquire } from "../../mod.ts";
import { describeHolders } from "../holder_text.ts";
import { inheritableDescriptor } from "../kernel/lock.ts";
import { missingDenoFlags } from "../../ffi/runtime.ts";
import { VERSION } from "../version.ts";
import { type Options, parseArgs, USAGE, UsageError } from "./args.ts";
import { runCommand, shellArgv } from "./command.ts";
import { errorExitCode, EX_UNAVAILABLE, EX_USAGE } from "./exit_codes.ts";
import { type CliOutput, holderText, safeInspect, startWaitingLine, status } from "./report.ts";

export type { CliOutput };

const processOutput: CliOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTerminal: process.stderr.isTTY === true,
};

/** The lock, or an exit code (conflict, timeout, error). */
async function take(options: Options, out: CliOutput): Promise<Lock | number> {
  const lockOptions = {
    shared: options.shared,
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
      const status = safeInspect(options.lockfile, options.backend);
      const timeout = options.nonblock ? 0 : options.timeoutSeconds;
      if (timeout === 0) {
        out.stderr(
          `filelock: ${options.lockfile} is locked${
            holderText(status) ? `, ${holderText(status)}` : ""
          }\n`,
        );
        return options.conflictExitCode;
      }
      waitingLine = startWaitingLine(options, out, seconds, status);
      lock = await acquire(options.lockfile, {
        ...lockOptions,
        timeout: timeout === undefined ? Infinity : timeout * 1000,
      });
    }
  } catch (error) {
    waitingLine?.();
    if (error instanceof LockTimeoutError) {
      out.stderr(
        `filelock: timed out after ${options.timeoutSeconds} s waiting for ${options.lockfile}${
          error.holders.length > 0 ? `, ${describeHolders(error.holders, "")}` : ""
        }\n`,
      );
      return options.conflictExitCode;
    }
    if (error instanceof LockError) {
      out.stderr(`filelock: cannot lock ${options.lockfile}: ${error.message}\n`);
      return errorExitCode(error);
    }
    throw error;
  }
  waitingLine?.();
  if (options.verbose) out.stderr(`filelock: got the lock after ${seconds()} s\n`);
  return lock;
}

/**
 * Runs the CLI with `args` (without the program name) and resolves to the
 * exit code; it never calls `process.exit` itself.
 *
 * @example
 * ```ts
 * import { main } from "@lockkit/filelock/cli";
 *
 * const code = await main(["-n", "/tmp/job.lock", "echo", "hello"]);
 * ```
 */
export async function main(args: readonly string[], output?: CliOutput): Promise<number> {
  const out = output ?? processOutput;
  let options: Options;
  try {
    options = parseArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`filelock: ${error.message}\nTry 'filelock --help' for more information.\n`);
    return EX_USAGE;
  }
  switch (options.action) {
    case "help":
      out.stdout(USAGE);
      return 0;
    case "version":
      out.stdout(`filelock ${VERSION}\n`);
      return 0;
    case "probe":
      try {
        out.stdout(`${JSON.stringify(probe({ backend: options.backend }), null, 2)}\n`);
        return 0;
      } catch (error) {
        if (!(error instanceof LockError)) throw error;
        out.stderr(`filelock: ${error.message}\n`);
        return EX_UNAVAILABLE;
      }
    case "status":
      return status(options, out);
  }
  const argv = options.shellCommand !== undefined
    ? shellArgv(options.shellCommand)
    : options.command;
  // Deno refuses what it was not allowed: say which flag, before taking the lock.
  const missing = missingDenoFlags([{ name: "run", command: argv[0] }, { name: "env" }]);
  if (missing.length > 0) {
    out.stderr(
      `filelock: Deno needs ${
        missing.join(" ")
      } to run the command with its environment; run it again with ${
        missing.length > 1 ? "those flags" : "that flag"
      }\n`,
    );
    return EX_UNAVAILABLE;
  }
  const lock = await take(options, out);
  if (typeof lock === "number") return lock;
  const lockDescriptor = options.close ? undefined : inheritableDescriptor(lock);
  try {
    return await runCommand(argv, out, options.verbose, lockDescriptor);
  } finally {
    await lock.release();
  }
}

function isMainModule(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  const script = process.argv[1];
  return script !== undefined && script === fileURLToPath(import.meta.url);
}

if (isMainModule()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
