/**
 * The `filelock` command line, parsed as util-linux `flock(1)` parses its own
 * (getopt_long with `+`: options end at the first argument that is not one;
 * long options may be abbreviated to any unique prefix). Pure: no I/O,
 * unit-tested on its own.
 *
 * @module
 */

import { backendRequestProblem } from "../options.ts";
import type { BackendRequest } from "../types.ts";

/** The help text. */
export const USAGE = `Usage:
 filelock [options] <file>|<directory> <command> [<argument>...]
 filelock [options] <file>|<directory> -c <command>
 filelock [options] <file descriptor number>
 filelock --status <file>|<directory>
 filelock --probe [<file>|<directory>]

Runs a command while holding a lock on a file (created if missing) or a
directory, or locks a descriptor the shell opened. A drop-in flock(1) that
works with Deno, Bun and Node, and excludes flock(1) and every other flock(2)
user of the same file.

Options (those of flock(1)):
 -s, --shared                   get a shared lock
 -x, -e, --exclusive            get an exclusive lock (the default)
 -u, --unlock                   remove a lock (descriptor mode)
 -n, --nb, --nonblock[ing]      fail rather than wait
 -w, --wait, --timeout <secs>   wait at most this long (fractions allowed; 0: one try)
 -E, --conflict-exit-code <n>   exit code after a conflict or a timeout (0 to 255)
 -o, --close                    the command does not inherit the lock
 -c, --command <command>        run a single command string through the shell
 -F, --no-fork                  replace filelock with the command (keeps the lock)
 -v, --verbose                  say how long getting the lock took, what runs, who holds it
 -h, --help                     display this help
 -V, --version                  display the version

Options of filelock's own:
     --status                   print whether the lock is held and by whom, and
                                its filesystem; exit 0 when free, 1 when held
     --probe [<path>]           print which backend this runtime uses, and why, as
                                JSON; with a lock path, also its filesystem
     --backend <name>           auto (default), ffi, native or pidfile
     --remove                   remove the lock file on release (exclusive locks)

Long options may be abbreviated to any unique prefix (those of flock(1) first).

Like flock(1), it prints nothing but the command's output unless -v is given
or stderr is a terminal; then a line on stderr shows the wait and the holder.
SIGINT and SIGTERM are passed on to the command; the lock is released after
the command has exited. The command inherits the locked descriptor (as with
flock(1)), so that it keeps holding the lock if filelock itself is killed;
with -o it does not. (The pidfile and native backends cannot pass it on.)

Exit codes:
  the command's own code (128+N when it dies of signal N)
  1 (or -E)  the lock is held (-n) or the timeout passed (-w)
  64         bad usage
  65         the descriptor cannot be locked
  66         the lock file cannot be opened
  69         the command cannot be run, or the backend is not available
`;

/** A mistake on the command line: printed with a hint to --help, exit 64. */
export class UsageError extends Error {}

/** The parsed command line. */
export interface Options {
  /** The lock to take: shared, exclusive, or (descriptor mode) none: unlock. */
  kind: "shared" | "exclusive" | "unlock";
  nonblock: boolean;
  timeoutSeconds: number | undefined;
  conflictExitCode: number;
  remove: boolean;
  /** `-o`: the command does not inherit the lock. */
  close: boolean;
  /** `-F`: the command replaces filelock. */
  noFork: boolean;
  backend: BackendRequest | undefined;
  verbose: boolean;
  action: "run" | "descriptor" | "status" | "probe" | "help" | "version";
  lockfile: string;
  /** Descriptor mode: the descriptor to lock. */
  descriptor: number | undefined;
  command: string[];
  shellCommand: string | undefined;
}

/** One long option: its name, whether it takes a value, and the short letter (or key) it stands for. */
interface LongOption {
  readonly name: string;
  readonly value: boolean;
  readonly key: string;
}

/** flock(1)'s long options (util-linux), which abbreviations resolve among first. */
const FLOCK_OPTIONS: readonly LongOption[] = [
  { name: "shared", value: false, key: "s" },
  { name: "exclusive", value: false, key: "x" },
  { name: "unlock", value: false, key: "u" },
  // --nonblock, the spelling flock(1)'s manual uses, is an abbreviation of --nonblocking.
  { name: "nonblocking", value: false, key: "n" },
  { name: "nb", value: false, key: "n" },
  { name: "timeout", value: true, key: "w" },
  { name: "wait", value: true, key: "w" },
  { name: "conflict-exit-code", value: true, key: "E" },
  { name: "close", value: false, key: "o" },
  { name: "no-fork", value: false, key: "F" },
  { name: "verbose", value: false, key: "v" },
  { name: "help", value: false, key: "h" },
  { name: "version", value: false, key: "V" },
];

/** filelock's own long options. */
const OWN_OPTIONS: readonly LongOption[] = [
  { name: "status", value: false, key: "status" },
  { name: "probe", value: false, key: "probe" },
  { name: "backend", value: true, key: "backend" },
  { name: "remove", value: false, key: "remove" },
];

/** Short options, and whether each takes a value. */
const SHORT: Readonly<Record<string, boolean>> = {
  s: false,
  x: false,
  e: false,
  u: false,
  n: false,
  o: false,
  F: false,
  v: false,
  h: false,
  V: false,
  w: true,
  E: true,
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

/**
 * The long option `name` stands for: an exact name, else the one option that
 * all its prefix matches stand for, looking among flock(1)'s options before
 * filelock's own (so that every abbreviation flock(1) takes means the same).
 */
function longOption(name: string, written: string): LongOption {
  for (const table of [FLOCK_OPTIONS, OWN_OPTIONS]) {
    const exact = table.find((option) => option.name === name);
    if (exact) return exact;
  }
  for (const table of [FLOCK_OPTIONS, OWN_OPTIONS]) {
    const matches = table.filter((option) => option.name.startsWith(name));
    if (matches.length === 0) continue;
    if (new Set(matches.map((option) => option.key)).size === 1) return matches[0];
    throw new UsageError(
      `option '${written}' is ambiguous; possibilities: ${
        matches.map((option) => `'--${option.name}'`).join(" ")
      }`,
    );
  }
  throw new UsageError(`unrecognized option '${written}'`);
}

function apply(options: Options, key: string, value: string | undefined): void {
  switch (key) {
    case "s":
      options.kind = "shared";
      return;
    case "x":
    case "e":
      options.kind = "exclusive";
      return;
    case "u":
      options.kind = "unlock";
      return;
    case "n":
      options.nonblock = true;
      return;
    case "o":
      options.close = true;
      return;
    case "F":
      options.noFork = true;
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
    case "w":
      options.timeoutSeconds = parseSeconds(value!);
      return;
    case "E":
      options.conflictExitCode = parseExitCode(value!);
      return;
    case "status":
    case "probe":
      options.action = key;
      return;
    case "remove":
      options.remove = true;
      return;
    case "backend": {
      const problem = backendRequestProblem(value);
      if (problem !== undefined) throw new UsageError(`--backend ${problem}`);
      options.backend = value as BackendRequest;
      return;
    }
  }
}

/** Parses the arguments (without the program name); throws `UsageError`. */
export function parseArgs(argv: readonly string[]): Options {
  const options: Options = {
    kind: "exclusive",
    nonblock: false,
    timeoutSeconds: undefined,
    conflictExitCode: 1,
    remove: false,
    close: false,
    noFork: false,
    backend: undefined,
    verbose: false,
    action: "run",
    lockfile: "",
    descriptor: undefined,
    command: [],
    shellCommand: undefined,
  };
  if (argv.length === 0) throw new UsageError("not enough arguments");
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
      const option = longOption(name, equals < 0 ? arg : arg.slice(0, equals));
      if (!option.value && inline !== undefined) {
        throw new UsageError(`option '--${option.name}' doesn't allow an argument`);
      }
      let value = inline;
      if (option.value && value === undefined) {
        value = argv[++i];
        if (value === undefined) {
          throw new UsageError(`option '--${option.name}' requires an argument`);
        }
      }
      apply(options, option.key, value);
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j];
        if (!(letter in SHORT)) throw new UsageError(`invalid option -- '${letter}'`);
        if (!SHORT[letter]) {
          apply(options, letter, undefined);
          continue;
        }
        const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i];
        if (value === undefined) throw new UsageError(`option requires an argument -- '${letter}'`);
        apply(options, letter, value);
        break;
      }
      continue;
    }
    break;
  }
  if (options.action === "help" || options.action === "version") return options;
  if (options.action === "probe") {
    const rest = argv.slice(i);
    if (rest.length > 1) throw new UsageError("--probe takes at most one lock path");
    options.lockfile = rest[0] ?? "";
    return options;
  }
  if (options.noFork && options.close) {
    throw new UsageError("the --no-fork and --close options are incompatible");
  }
  // -w 0 is -n, as in flock(1).
  if (options.timeoutSeconds === 0) options.nonblock = true;
  const rest = argv.slice(i);
  if (options.action === "status") {
    if (rest.length !== 1) throw new UsageError("--status takes exactly one lock file");
    options.lockfile = rest[0];
    return options;
  }
  if (rest.length === 0) throw new UsageError("requires file descriptor, file or directory");
  if (rest.length === 1) {
    // One argument: a descriptor the shell opened, as flock(1) reads it.
    const text = rest[0];
    const descriptor = Number(text);
    if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(descriptor) || descriptor > 0x7fffffff) {
      throw new UsageError(`bad file descriptor: '${text}'`);
    }
    options.action = "descriptor";
    options.descriptor = descriptor;
    return options;
  }
  options.lockfile = rest[0];
  const command = rest.slice(1);
  if (command[0] === "-c" || command[0] === "--command") {
    if (command.length !== 2) {
      throw new UsageError(`${command[0]} requires exactly one command argument`);
    }
    options.shellCommand = command[1];
  } else {
    options.command = command;
  }
  return options;
}
