/**
 * `filelock`: a drop-in `flock(1)` for Deno, Bun and Node that can also say
 * who holds the lock. It takes the lock, runs a command while holding it, and
 * releases it when the command ends; or locks a descriptor the shell opened.
 * Options, exit codes and output follow util-linux `flock(1)`.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-ffi --allow-run --allow-env --allow-sys=hostname \
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
import { writeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { acquire, type Lock, LockError, LockTimeoutError, probe, tryAcquire } from "../../mod.ts";
import { ffiBinding, missingDenoFlags } from "../../ffi/runtime.ts";
import type { Binding } from "../../ffi/types.ts";
import { DescriptorLocking, unlockDescriptor } from "../kernel/descriptor.ts";
import { inheritableDescriptor } from "../kernel/lock.ts";
import { VERSION } from "../version.ts";
import { settle, wait, waitSync } from "../wait.ts";
import { type Options, parseArgs, USAGE, UsageError } from "./args.ts";
import { runCommand, shellArgv } from "./command.ts";
import { errorExitCode, EX_DATAERR, EX_OSERR, EX_UNAVAILABLE, EX_USAGE } from "./exit_codes.ts";
import {
  type CliOutput,
  holderText,
  safeInspect,
  startWaitingLine,
  status,
  strerror,
} from "./report.ts";

export type { CliOutput };

const encoder = new TextEncoder();

/** Writes all of `text` to descriptor `fd` now: nothing is left in a buffer when the process is replaced (-F) or ends. */
function writeNow(fd: number, text: string): void {
  const bytes = encoder.encode(text);
  for (let written = 0; written < bytes.length;) {
    try {
      written += writeSync(fd, bytes, written);
    } catch (error) {
      // A non-blocking pipe that is full for a moment: try again.
      if ((error as { code?: string }).code !== "EAGAIN") throw error;
    }
  }
}

const processOutput: CliOutput = {
  stdout: (text) => writeNow(1, text),
  stderr: (text) => writeNow(2, text),
  stderrIsTerminal: process.stderr.isTTY === true,
};

/** Whether to say more than flock(1) does: on a terminal, or with -v. */
function talkative(options: Options, out: CliOutput): boolean {
  return out.stderrIsTerminal || options.verbose;
}

/** flock(1)'s verbose line once the lock is held, on stdout. */
function tookLine(options: Options, out: CliOutput, started: number): void {
  if (!options.verbose) return;
  const micros = Math.round((performance.now() - started) * 1000);
  const seconds = Math.floor(micros / 1e6);
  out.stdout(
    `filelock: getting lock took ${seconds}.${String(micros % 1e6).padStart(6, "0")} seconds\n`,
  );
}

/** The lock is held (-n): flock(1)'s verbose line, and ours naming the holder. */
function conflict(options: Options, out: CliOutput, what: string, holder: string): number {
  if (options.verbose) out.stderr("filelock: failed to get lock\n");
  if (talkative(options, out)) {
    out.stderr(`filelock: ${what} is locked${holder ? `, ${holder}` : ""}\n`);
  }
  return options.conflictExitCode;
}

/** The wait timed out (-w): flock(1)'s verbose line, and ours naming the holder. */
function timedOut(options: Options, out: CliOutput, what: string, holder: string): number {
  if (options.verbose) out.stderr("filelock: timeout while waiting to get lock\n");
  if (talkative(options, out)) {
    out.stderr(
      `filelock: timed out after ${options.timeoutSeconds} s waiting for ${what}${
        holder ? `, ${holder}` : ""
      }\n`,
    );
  }
  return options.conflictExitCode;
}

function timeoutMs(options: Options): number {
  if (options.nonblock) return 0;
  return options.timeoutSeconds === undefined ? Infinity : options.timeoutSeconds * 1000;
}

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
      out.stderr(`filelock: cannot lock ${options.lockfile}: ${error.message}\n`);
      return errorExitCode(error);
    }
    throw error;
  }
  waitingLine?.();
  tookLine(options, out, started);
  return lock;
}

/** The binding that can lock a descriptor the shell passed in, or why there is none. */
function descriptorBinding(options: Options): Binding | string {
  if (options.backend === "native" || options.backend === "pidfile") {
    return `the ${options.backend} backend cannot lock a descriptor it did not open`;
  }
  const ffi = ffiBinding();
  if (ffi.binding?.osDescriptors) return ffi.binding;
  return `locking a descriptor needs the FFI backend (flock on the shell's own descriptor), and ${ffi.reason}`;
}

/** Descriptor mode: lock (or unlock) descriptor N, as `flock N` does; the shell keeps the lock. */
async function lockDescriptor(options: Options, out: CliOutput): Promise<number> {
  const fd = options.descriptor!;
  const binding = descriptorBinding(options);
  if (typeof binding === "string") {
    out.stderr(`filelock: ${binding}\n`);
    return EX_UNAVAILABLE;
  }
  const fail = (code: string) => {
    out.stderr(`filelock: ${fd}: ${strerror(code)}\n`);
    return code === "ENOLCK" || code === "ENOMEM" ? EX_OSERR : EX_DATAERR;
  };
  if (options.kind === "unlock") {
    const result = unlockDescriptor(binding, fd);
    return result === 0 ? 0 : fail(binding.errnoName(-result));
  }
  const started = performance.now();
  const timeout = timeoutMs(options);
  const locking = new DescriptorLocking(binding, fd, options.kind === "shared", timeout);
  try {
    if (timeout === 0) {
      if (settle(locking, undefined) === undefined) {
        return conflict(options, out, `descriptor ${fd}`, "");
      }
    } else if (timeout === Infinity) {
      waitSync(locking, Infinity); // in the kernel, as flock(1) waits
    } else {
      await wait(locking, timeout, undefined);
    }
  } catch (error) {
    if (error instanceof LockTimeoutError) return timedOut(options, out, `descriptor ${fd}`, "");
    if (error instanceof LockError) return fail(error.code);
    throw error;
  }
  tookLine(options, out, started);
  return 0;
}

/**
 * `-F`: replaces this process with the command, which keeps the lock (a
 * duplicate of the locked descriptor survives `exec`; a pidfile record names
 * the same pid). Returns only when that is impossible or `exec` fails.
 */
async function execInPlace(
  lock: Lock,
  argv: string[],
  options: Options,
  out: CliOutput,
): Promise<number> {
  const binding = ffiBinding().binding;
  const fd = inheritableDescriptor(lock);
  let kept = -1;
  if (binding?.exec !== undefined && (fd !== undefined || lock.backend === "pidfile")) {
    if (fd !== undefined) kept = binding.dup?.(fd) ?? -1;
    if (fd === undefined || kept >= 0) {
      if (options.verbose) out.stdout(`filelock: executing ${argv[0]}\n`);
      const failed = binding.exec(argv);
      if (kept >= 0) binding.close(kept);
      const code = binding.errnoName(-failed);
      out.stderr(`filelock: failed to execute ${argv[0]}: ${strerror(code)}\n`);
      await lock.release();
      return code === "ENOMEM" ? EX_OSERR : EX_UNAVAILABLE;
    }
  }
  await lock.release();
  out.stderr(
    `filelock: -F (--no-fork) needs the FFI backend with ${
      lock.backend === "pidfile" ? "" : "its own "
    }descriptors to keep the lock across exec; this process locked with ${lock.backend}${
      binding ? "" : ` (${ffiBinding().reason})`
    }\n`,
  );
  return EX_UNAVAILABLE;
}

/** Runs a command under a lock on a file or directory. */
async function lockFile(options: Options, out: CliOutput): Promise<number> {
  const argv = options.shellCommand !== undefined
    ? shellArgv(options.shellCommand)
    : options.command;
  // Deno refuses what it was not allowed: say which flag, before taking the lock.
  const missing = missingDenoFlags(
    options.noFork ? [] : [{ name: "run", command: argv[0] }, { name: "env" }],
  );
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
  // -u on a file unlocks a descriptor nobody else has: as with flock(1), the command just runs.
  const lock = options.kind === "unlock" ? undefined : await take(options, out);
  if (typeof lock === "number") return lock;
  if (lock !== undefined && options.noFork) return await execInPlace(lock, argv, options, out);
  const lockDescriptor = options.close || lock === undefined
    ? undefined
    : inheritableDescriptor(lock);
  try {
    return await runCommand(argv, out, options.verbose, lockDescriptor);
  } finally {
    await lock?.release();
  }
}

/**
 * Runs the CLI with `args` (without the program name) and resolves to the
 * exit code; it never calls `process.exit` itself (with `-F` it replaces the
 * process with the command).
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
        const result = options.lockfile === ""
          ? probe({ backend: options.backend })
          : probe(options.lockfile, { backend: options.backend });
        out.stdout(`${JSON.stringify(result, null, 2)}\n`);
        return 0;
      } catch (error) {
        if (!(error instanceof LockError)) throw error;
        out.stderr(`filelock: ${error.message}\n`);
        return EX_UNAVAILABLE;
      }
    case "status":
      return status(options, out);
    case "descriptor":
      return await lockDescriptor(options, out);
  }
  return await lockFile(options, out);
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
