// The filelock command line, parsed without running anything: every
// spelling flock(1) takes, getopt_long's abbreviations, descriptor mode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Options, parseArgs, UsageError } from "../../src/cli/args.ts";
import { runtimeName } from "../helpers.ts";

function refused(args: string[], message: RegExp): void {
  assert.throws(() => parseArgs(args), (e) => e instanceof UsageError && message.test(e.message));
}

test(`${runtimeName}: args: a lock file and a command, with flock(1)'s defaults`, () => {
  const expected: Options = {
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
    lockfile: "/tmp/a.lock",
    descriptor: undefined,
    command: ["echo", "-n", "hi"],
    shellCommand: undefined,
  };
  assert.deepEqual(parseArgs(["/tmp/a.lock", "echo", "-n", "hi"]), expected);
});

test(`${runtimeName}: args: every short option of flock(1), bundled, with values every way getopt takes them`, () => {
  const options = parseArgs(["-snv", "-w1.5", "-E", "7", "x.lock", "true"]);
  assert.equal(options.kind, "shared");
  assert.equal(options.nonblock, true);
  assert.equal(options.verbose, true);
  assert.equal(options.timeoutSeconds, 1.5);
  assert.equal(options.conflictExitCode, 7);
  assert.equal(parseArgs(["-e", "x", "true"]).kind, "exclusive", "-e is -x");
  assert.equal(parseArgs(["-s", "-x", "x", "true"]).kind, "exclusive", "the last of -s/-x wins");
  assert.equal(parseArgs(["-u", "9"]).kind, "unlock");
  assert.equal(parseArgs(["-o", "x", "true"]).close, true);
  assert.equal(parseArgs(["-F", "x", "true"]).noFork, true);
  assert.equal(parseArgs(["-w", "0", "x", "true"]).nonblock, true, "-w 0 is -n, as in flock(1)");
});

test(`${runtimeName}: args: every long option of flock(1) and its aliases`, () => {
  const of = (...args: string[]) => parseArgs([...args, "x.lock", "true"]);
  assert.equal(of("--shared").kind, "shared");
  assert.equal(of("--exclusive").kind, "exclusive");
  assert.equal(parseArgs(["--unlock", "9"]).kind, "unlock");
  for (const spelling of ["--nonblocking", "--nonblock", "--nb"]) {
    assert.equal(of(spelling).nonblock, true, spelling);
  }
  for (const spelling of ["--timeout", "--wait"]) {
    assert.equal(of(spelling, "2").timeoutSeconds, 2, spelling);
    assert.equal(of(`${spelling}=0.1`).timeoutSeconds, 0.1, spelling);
  }
  assert.equal(of("--conflict-exit-code=0").conflictExitCode, 0);
  assert.equal(of("--close").close, true);
  assert.equal(of("--no-fork").noFork, true);
  assert.equal(of("--verbose").verbose, true);
  assert.equal(parseArgs(["--help"]).action, "help");
  assert.equal(parseArgs(["--version"]).action, "version");
  assert.equal(of("--remove").remove, true);
  assert.equal(of("--backend", "pidfile").backend, "pidfile");
});

test(`${runtimeName}: args: long options abbreviate to a unique prefix, flock(1)'s before filelock's`, () => {
  const of = (...args: string[]) => parseArgs([...args, "x.lock", "true"]);
  assert.equal(of("--nonb").nonblock, true, "--nonblock and --nonblocking are the same option");
  assert.equal(of("--wai", "1").timeoutSeconds, 1);
  assert.equal(of("--conf", "5").conflictExitCode, 5);
  assert.equal(of("--sh").kind, "shared");
  assert.equal(of("--s").kind, "shared", "flock(1)'s --shared before filelock's --status");
  assert.equal(of("--no-").noFork, true, "--no-fork: the only one starting with --no-");
  assert.equal(of("--e").kind, "exclusive");
  assert.equal(of("--rem").remove, true);
  assert.equal(parseArgs(["--stat", "x.lock"]).action, "status");
  refused(
    ["--c", "x", "true"],
    /option '--c' is ambiguous; possibilities: '--conflict-exit-code' '--close'/,
  );
  refused(
    ["--no", "x", "true"],
    /ambiguous; possibilities: '--nonblocking' '--no-fork'/,
  );
  // As glibc's getopt_long lists them: --nb is --nonblocking again, so it is not a possibility.
  refused(
    ["--n", "x", "true"],
    /^option '--n' is ambiguous; possibilities: '--nonblocking' '--no-fork'$/,
  );
  refused(
    ["--ver", "x", "true"],
    /^option '--ver' is ambiguous; possibilities: '--verbose' '--version'$/,
  );
});

test(`${runtimeName}: args: one argument is a descriptor, as flock(1) reads it`, () => {
  const fd = parseArgs(["-n", "200"]);
  assert.equal(fd.action, "descriptor");
  assert.equal(fd.descriptor, 200);
  refused(["x.lock"], /bad file descriptor: 'x.lock'/);
  refused(["-n", "-5x"], /invalid option/);
  refused(["99999999999"], /bad file descriptor/);
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
  refused(["x.lock", "-c"], /-c requires exactly one command argument/);
  refused(["x.lock", "-c", "true", "extra"], /exactly one command/);
});

test(`${runtimeName}: args: --status and --probe`, () => {
  assert.equal(parseArgs(["--status", "x.lock"]).action, "status");
  assert.equal(parseArgs(["--probe"]).action, "probe");
  refused(["--status"], /--status takes exactly one lock file/);
  refused(["--status", "x.lock", "extra"], /exactly one lock file/);
});

test(`${runtimeName}: args: mistakes are usage errors that say what is wrong, in flock(1)'s words`, () => {
  refused([], /not enough arguments/);
  refused(["-n"], /requires file descriptor, file or directory/);
  refused(["--bogus", "x", "true"], /unrecognized option '--bogus'/);
  refused(["-q", "x", "true"], /invalid option -- 'q'/);
  refused(["-w"], /requires an argument -- 'w'/);
  refused(["--timeout"], /'--timeout' requires an argument/);
  refused(["-w", "soon", "x", "true"], /invalid timeout value: 'soon'/);
  refused(["-w", "-1", "x", "true"], /invalid timeout value/);
  refused(["-E", "300", "x", "true"], /out of range/);
  refused(["-E", "1.5", "x", "true"], /invalid exit code/);
  refused(["--shared=yes", "x", "true"], /doesn't allow an argument/);
  refused(["-F", "-o", "x", "true"], /--no-fork and --close options are incompatible/);
  refused(
    ["--backend", "magic", "x", "true"],
    /--backend must be one of auto, ffi, native, pidfile/,
  );
});
