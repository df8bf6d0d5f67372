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
import { longOption, SHORT } from "./option_table.ts";
import { UsageError } from "./usage.ts";

export { USAGE, UsageError } from "./usage.ts";

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
