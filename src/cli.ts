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

import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  acquire,
  type BackendRequest,
  inspect,
  type Lock,
  LockError,
  type LockStatus,
  LockTimeoutError,
  probe,
  tryAcquire,
} from "../mod.ts";
import { describeHolders } from "./holder.ts";
import { isBackendRequest } from "./options.ts";
import { VERSION } from "./version.ts";

/** sysexits.h codes, as util-linux `flock(1)` uses them. */
const EX_USAGE = 64;
const EX_NOINPUT = 66;
const EX_UNAVAILABLE = 69;
const EX_OSERR = 71;
const EX_CANTCREAT = 73;

const USAGE = `Usage:
  filelock [options] <lockfile> <command> [<argument>...]
  filelock [options] <lockfile> -c <shell command>
  filelock --status <lockfile>
  filelock --probe

Runs a command while holding a lock on <lockfile> (created if missing), and
releases the lock when the command ends. Works with Deno, Bun and Node, and
excludes flock(1) and every other flock(2) user of the same file.

Options:
  -s, --shared                   take a shared (read) lock
  -x, --exclusive                take an exclusive (write) lock (the default)
  -n, --nonblock                 fail at once if the lock is held
  -w, --timeout <seconds>        wait at most this long (fractions allowed; 0: one try)
  -E, --conflict-exit-code <n>   exit code when the lock is held (-n) or the wait
                                 times out (-w); 0 to 255, default 1
  -c, --command <command>        run a single string through the shell ($SHELL or /bin/sh)
      --remove                   remove the lock file on release (exclusive locks)
      --backend <name>           auto (default), ffi, native or pidfile
  -v, --verbose                  say when waiting starts and ends, and who holds the lock
      --status                   print whether <lockfile> is held and by whom;
                                 exit 0 when free, 1 when held
      --probe                    print which backend this runtime uses, and why, as JSON
  -h, --help                     show this help
  -V, --version                  show the version

While it waits on a terminal (or with -v), one line on stderr shows the time
spent and the holder. Nothing but the command's own output goes to stdout.
SIGINT and SIGTERM are passed on to the command; the lock is released after
the command has exited. The command never inherits the lock.

Exit codes:
  the command's own code (128+N when it dies of signal N)
  1 (or -E)  the lock is held (-n) or the timeout passed (-w)
  64         bad usage
  66         the lock file cannot be opened
  69         the command cannot be run, or the backend is not available
`;

/** A mistake on the command line: printed with a hint to --help, exit 64. */
class UsageError extends Error {}

/** The parsed command line. */
interface Options {
  shared: boolean;
  nonblock: boolean;
  timeoutSeconds: number | undefined;
  conflictExitCode: number;
  remove: boolean;
  backend: BackendRequest | undefined;
  verbose: boolean;
  action: "run" | "status" | "probe" | "help" | "version";
  lockfile: string;
  command: string[];
  shellCommand: string | undefined;
}

/** Short options without a value. */
const FLAGS = new Set(["s", "x", "n", "v", "h", "V"]);
const LONG_FLAGS: Record<string, string> = {
  shared: "s",
  exclusive: "x",
  nonblock: "n",
  verbose: "v",
  help: "h",
  version: "V",
};
const LONG_VALUES: Record<string, string> = {
  timeout: "w",
  "conflict-exit-code": "E",
  backend: "backend",
};

function parseSeconds(text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new UsageError(`invalid timeout value: '${text}'`);
  }
  return value;
}

function parseExitCode(text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value)) {
    throw new UsageError(`invalid exit code: '${text}'`);
  }
  if (value < 0 || value > 255) throw new UsageError("exit code out of range (expected 0 to 255)");
  return value;
}

function setFlag(options: Options, letter: string): void {
  switch (letter) {
    case "s":
      options.shared = true;
      return;
    case "x":
      options.shared = false;
      return;
    case "n":
      options.nonblock = true;
      return;
    case "v":
      options.verbose = true;
      return;
    case "h":
      options.action = "help";
      return;
    case "V":
      options.action = "version";
      return;
  }
}

function setValue(options: Options, name: string, value: string): void {
  if (name === "w") options.timeoutSeconds = parseSeconds(value);
  else if (name === "E") options.conflictExitCode = parseExitCode(value);
  else {
    if (!isBackendRequest(value)) {
      throw new UsageError(`invalid backend: '${value}' (expected auto, ffi, native or pidfile)`);
    }
    options.backend = value;
  }
}

/** Parses the arguments like getopt with `+`: options end at the lock file. */
function parse(argv: readonly string[]): Options {
  const options: Options = {
    shared: false,
    nonblock: false,
    timeoutSeconds: undefined,
    conflictExitCode: 1,
    remove: false,
    backend: undefined,
    verbose: false,
    action: "run",
    lockfile: "",
    command: [],
    shellCommand: undefined,
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      i++;
      break;
    }
    if (arg.startsWith("--")) {
      const equals = arg.indexOf("=");
      const name = arg.slice(2, equals < 0 ? undefined : equals);
      const inline = equals < 0 ? undefined : arg.slice(equals + 1);
      if (name in LONG_VALUES) {
        const value = inline ?? argv[++i];
        if (value === undefined) throw new UsageError(`option '--${name}' requires an argument`);
        setValue(options, LONG_VALUES[name], value);
        continue;
      }
      if (inline !== undefined && (name in LONG_FLAGS || name === "remove")) {
        throw new UsageError(`option '--${name}' doesn't allow an argument`);
      }
      if (name in LONG_FLAGS) setFlag(options, LONG_FLAGS[name]);
      else if (name === "remove") options.remove = true;
      else if (name === "status") options.action = "status";
      else if (name === "probe") options.action = "probe";
      else if (name === "command") throw new UsageError("-c/--command comes after the lock file");
      else throw new UsageError(`unrecognized option '${arg}'`);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j];
        if (letter === "w" || letter === "E") {
          const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
          if (value === undefined) {
            throw new UsageError(`option requires an argument -- '${letter}'`);
          }
          setValue(options, letter, value);
          break;
        }
        if (!FLAGS.has(letter)) throw new UsageError(`invalid option -- '${letter}'`);
        setFlag(options, letter);
      }
      continue;
    }
    break;
  }
  if (options.action === "help" || options.action === "version" || options.action === "probe") {
    return options;
  }
  const rest = argv.slice(i);
  if (rest.length === 0) {
    throw new UsageError(
      options.action === "status" ? "--status requires a lock file" : "not enough arguments",
    );
  }
  options.lockfile = rest[0];
  if (options.action === "status") {
    if (rest.length > 1) throw new UsageError("--status takes only a lock file");
    return options;
  }
  const command = rest.slice(1);
  if (command[0] === "-c" || command[0] === "--command") {
    if (command.length !== 2) throw new UsageError("-c requires exactly one command argument");
    options.shellCommand = command[1];
  } else if (command.length === 0) {
    throw new UsageError("no command to run after the lock file");
  } else {
    options.command = command;
  }
  return options;
}

/** Where the CLI writes; tests may replace it. */
export interface CliOutput {
  /** Standard output. */
  stdout(text: string): void;
  /** Standard error. */
  stderr(text: string): void;
  /** Whether standard error is a terminal. */
  stderrIsTerminal: boolean;
}

const processOutput: CliOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTerminal: process.stderr.isTTY === true,
};

function errorExitCode(error: LockError): number {
  switch (error.code) {
    case "EUNSUPPORTED":
      return EX_UNAVAILABLE;
    case "EMFILE":
    case "ENFILE":
    case "ENOMEM":
      return EX_OSERR;
    case "EROFS":
    case "ENOSPC":
      return EX_CANTCREAT;
    default:
      return EX_NOINPUT;
  }
}

function holderText(status: LockStatus | undefined): string {
  if (status === undefined) return "";
  return describeHolders(status.holders, "");
}

function safeInspect(path: string, backend: BackendRequest | undefined): LockStatus | undefined {
  try {
    return inspect(path, { backend });
  } catch {
    return undefined;
  }
}

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
 * Shows the wait on stderr: an updating line on a terminal, one line with -v
 * otherwise. Returns the function that ends it.
 */
function startWaitingLine(
  options: Options,
  out: CliOutput,
  seconds: () => string,
  first: LockStatus | undefined,
): (() => void) | undefined {
  if (!out.stderrIsTerminal) {
    if (options.verbose) {
      const holder = holderText(first);
      out.stderr(`filelock: waiting for ${options.lockfile}${holder ? `, ${holder}` : ""}\n`);
    }
    return undefined;
  }
  let status = first;
  const draw = () => {
    const holder = holderText(status);
    out.stderr(
      `\r\x1b[Kfilelock: waiting ${seconds()} s for ${options.lockfile}${
        holder ? `, ${holder}` : ""
      }`,
    );
  };
  draw();
  let ticks = 0;
  const timer = setInterval(() => {
    // The holder may change while we wait; look again now and then.
    if (++ticks % 4 === 0) status = safeInspect(options.lockfile, options.backend) ?? status;
    draw();
  }, 250);
  return () => {
    clearInterval(timer);
    out.stderr("\r\x1b[K");
  };
}

function shellArgv(command: string): string[] {
  if (process.platform === "win32") {
    return [process.env.ComSpec ?? "cmd.exe", "/d", "/s", "/c", command];
  }
  return [process.env.SHELL || "/bin/sh", "-c", command];
}

/** Runs the command with the lock held; resolves to its exit code (128+N for signal N). */
async function runCommand(argv: string[], out: CliOutput, verbose: boolean): Promise<number> {
  if (verbose) out.stderr(`filelock: executing ${argv[0]}\n`);
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
      child = spawn(argv[0], argv.slice(1), { stdio: "inherit" });
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

function status(options: Options, out: CliOutput): number {
  let result: LockStatus;
  try {
    result = inspect(options.lockfile, { backend: options.backend });
  } catch (error) {
    if (error instanceof LockError) {
      out.stderr(`filelock: cannot inspect ${options.lockfile}: ${error.message}\n`);
      return errorExitCode(error);
    }
    throw error;
  }
  if (result.state === "unknown") {
    // No way to see a kernel lock here without trying it: try, and let go at once.
    const lock = tryAcquire(options.lockfile, { backend: options.backend });
    if (lock === null) {
      out.stdout(`held: ${result.path} (holder unknown: ${result.detail})\n`);
      return 1;
    }
    lock.releaseSync();
    out.stdout(`free: ${result.path}\n`);
    return 0;
  }
  if (result.state === "held") {
    out.stdout(
      `held: ${result.path}, ${describeHolders(result.holders, "by an unknown holder")}\n`,
    );
    return 1;
  }
  out.stdout(`${result.state === "stale" ? "free (stale)" : "free"}: ${result.path}`);
  out.stdout(result.state === "stale" ? `: ${result.detail}\n` : "\n");
  return 0;
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
    options = parse(args);
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
  const lock = await take(options, out);
  if (typeof lock === "number") return lock;
  const argv = options.shellCommand !== undefined
    ? shellArgv(options.shellCommand)
    : options.command;
  try {
    return await runCommand(argv, out, options.verbose);
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
  process.exitCode = await main(process.argv.slice(2));
}
