// The filelock command line, parsed without running anything.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Options, parseArgs, UsageError } from "../../src/cli/args.ts";
import { runtimeName } from "../helpers.ts";

function parsed(args: string[]): Partial<Options> {
  return parseArgs(args);
}

function refused(args: string[], message: RegExp): void {
  assert.throws(() => parseArgs(args), (e) => e instanceof UsageError && message.test(e.message));
}

test(`${runtimeName}: args: a lock file and a command, with flock(1)'s defaults`, () => {
  assert.deepEqual(parsed(["/tmp/a.lock", "echo", "-n", "hi"]), {
    shared: false,
    nonblock: false,
    timeoutSeconds: undefined,
    conflictExitCode: 1,
    remove: false,
    close: false,
    backend: undefined,
    verbose: false,
    action: "run",
    lockfile: "/tmp/a.lock",
    command: ["echo", "-n", "hi"],
    shellCommand: undefined,
  });
});

test(`${runtimeName}: args: short, bundled and long options, with values every way getopt takes them`, () => {
  const options = parseArgs(["-snv", "-w1.5", "-E", "7", "x.lock", "true"]);
  assert.equal(options.shared, true);
  assert.equal(options.nonblock, true);
  assert.equal(options.verbose, true);
  assert.equal(options.timeoutSeconds, 1.5);
  assert.equal(options.conflictExitCode, 7);
  assert.equal(parseArgs(["--timeout=0.1", "x", "true"]).timeoutSeconds, 0.1);
  assert.equal(parseArgs(["--timeout", "2", "x", "true"]).timeoutSeconds, 2);
  assert.equal(parseArgs(["--conflict-exit-code=0", "x", "true"]).conflictExitCode, 0);
  assert.equal(parseArgs(["-s", "-x", "x", "true"]).shared, false, "the last of -s/-x wins");
  assert.equal(parseArgs(["--remove", "x", "true"]).remove, true);
  assert.equal(parseArgs(["--backend", "pidfile", "x", "true"]).backend, "pidfile");
});

test(`${runtimeName}: args: options end at the lock file, or at --`, () => {
  assert.deepEqual(parseArgs(["x.lock", "-n", "true"]).command, ["-n", "true"]);
  const dashed = parseArgs(["--", "-weird.lock", "true"]);
  assert.equal(dashed.lockfile, "-weird.lock");
  assert.deepEqual(dashed.command, ["true"]);
});

test(`${runtimeName}: args: -c takes one shell command after the lock file`, () => {
  assert.equal(parseArgs(["x.lock", "-c", "echo a && echo b"]).shellCommand, "echo a && echo b");
  assert.equal(parseArgs(["x.lock", "--command", "true"]).shellCommand, "true");
  refused(["x.lock", "-c"], /exactly one command/);
  refused(["x.lock", "-c", "true", "extra"], /exactly one command/);
});

test(`${runtimeName}: args: --status, --probe, --help and --version`, () => {
  assert.equal(parseArgs(["--status", "x.lock"]).action, "status");
  assert.equal(parseArgs(["--probe"]).action, "probe");
  assert.equal(parseArgs(["-h"]).action, "help");
  assert.equal(parseArgs(["--version"]).action, "version");
  refused(["--status"], /--status requires a lock file/);
  refused(["--status", "x.lock", "extra"], /only a lock file/);
});

test(`${runtimeName}: args: mistakes are usage errors that say what is wrong`, () => {
  refused([], /not enough arguments/);
  refused(["x.lock"], /no command to run/);
  refused(["--bogus", "x", "true"], /unrecognized option '--bogus'/);
  refused(["-q", "x", "true"], /invalid option -- 'q'/);
  refused(["-w"], /requires an argument -- 'w'/);
  refused(["--timeout"], /'--timeout' requires an argument/);
  refused(["-w", "soon", "x", "true"], /invalid timeout value: 'soon'/);
  refused(["-w", "-1", "x", "true"], /invalid timeout value/);
  refused(["-E", "300", "x", "true"], /out of range/);
  refused(["-E", "1.5", "x", "true"], /invalid exit code/);
  refused(["--shared=yes", "x", "true"], /doesn't allow an argument/);
  refused(
    ["--backend", "magic", "x", "true"],
    /--backend must be one of auto, ffi, native, pidfile/,
  );
});
