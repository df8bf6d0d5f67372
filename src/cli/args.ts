/**
 * The `filelock` command line, parsed like util-linux `flock(1)` (getopt with
 * `+`: options end at the lock file). Pure: no I/O, unit-tested on its own.
 *
 * @module
 */

import { backendRequestProblem } from "../options.ts";
import type { BackendRequest } from "../types.ts";

/** The help text. */
export const USAGE = `Usage:
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
  -o, --close                    the command does not inherit the lock
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
the command has exited. The command inherits the locked descriptor (as with
flock(1)), so that it keeps holding the lock if filelock itself is killed;
with -o it does not. (The pidfile and native backends cannot pass it on.)

Exit codes:
  the command's own code (128+N when it dies of signal N)
  1 (or -E)  the lock is held (-n) or the timeout passed (-w)
  64         bad usage
  66         the lock file cannot be opened
  69         the command cannot be run, or the backend is not available
`;

/** A mistake on the command line: printed with a hint to --help, exit 64. */
export class UsageError extends Error {}

/** The parsed command line. */
export interface Options {
  shared: boolean;
  nonblock: boolean;
  timeoutSeconds: number | undefined;
  conflictExitCode: number;
  remove: boolean;
  /** `-o`: the command does not inherit the lock. */
  close: boolean;
  backend: BackendRequest | undefined;
  verbose: boolean;
  action: "run" | "status" | "probe" | "help" | "version";
  lockfile: string;
  command: string[];
  shellCommand: string | undefined;
}

/** Short options without a value. */
const FLAGS = new Set(["s", "x", "n", "o", "v", "h", "V"]);
const LONG_FLAGS: Record<string, string> = {
  close: "o",
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
    case "o":
      options.close = true;
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
    const problem = backendRequestProblem(value);
    if (problem !== undefined) throw new UsageError(`--backend ${problem}`);
    options.backend = value as BackendRequest;
  }
}

/** Parses the arguments (without the program name); throws `UsageError`. */
export function parseArgs(argv: readonly string[]): Options {
  const options: Options = {
    shared: false,
    nonblock: false,
    timeoutSeconds: undefined,
    conflictExitCode: 1,
    remove: false,
    close: false,
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
