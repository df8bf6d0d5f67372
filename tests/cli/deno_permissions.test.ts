// The CLI and the library under Deno's permissions (issue 14): a missing flag
// is named in one line, never an uncaught error, and the Quick Start's flags
// give everything, including who holds the lock. --allow-env is optional: the
// command gets its environment through Deno.Command (issue 15).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tryAcquire } from "../../mod.ts";
import {
  bin,
  cliArgv,
  exited,
  finish,
  hasCommand,
  inTemp,
  repoRoot,
  runtimeName,
  start,
  waitFor,
} from "../helpers.ts";

const CLI = join(repoRoot, "src", "cli", "main.ts");
const deno = (flags: string[], args: string[]) => [bin("deno"), "run", ...flags, CLI, ...args];

/** The Deno flags of the README's Quick Start. */
function quickStartFlags(): string[] {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const line = /deno run ((?:--allow-\S+ ?)+)\\?\n\s*jsr:@lockkit\/filelock\/cli/.exec(readme);
  assert.ok(line, "the Quick Start runs the CLI with deno run and its flags");
  return line[1].trim().split(/\s+/);
}

const q = (words: string[]): string => words.map((w) => `'${w}'`).join(" ");

const ALL = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-run", "--allow-env"];

test(
  `${runtimeName}: deno permissions: a missing --allow-run is named, and nothing is locked`,
  inTemp(async (dir) => {
    const lock = join(dir, "e.lock");
    for (
      const [flags, named] of [
        [ALL.filter((f) => f !== "--allow-run"), /--allow-run=true/],
        [[...ALL.filter((f) => f !== "--allow-run"), "--allow-run=sh"], /--allow-run=true/],
      ] as const
    ) {
      const result = await finish(start(deno([...flags], [lock, "true"])));
      assert.equal(result.code, 69, `${flags.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, named);
      assert.match(result.stderr, /to run true;/, "it names the command, not its environment");
      assert.doesNotMatch(result.stderr, /Uncaught|NotCapable|environment/);
      assert.equal(result.stderr.trim().split("\n").length, 1, "one line");
      assert.ok(!existsSync(lock), "checked before taking the lock");
    }
  }),
);

test(
  `${runtimeName}: deno permissions: without --allow-env the command runs, with its environment, holding the lock`,
  inTemp(async (dir) => {
    const lock = join(dir, "v.lock");
    // The command shows a variable of its environment, and whether the lock is held (by it).
    const script = `echo "value: $FILELOCK_TEST_VALUE"; ` +
      `${q(cliArgv(["-n", lock, "true"]))}; echo "held: $?"`;
    const run = (flags: string[], env: Record<string, string>) =>
      finish(start(deno(flags, [lock, "sh", "-c", script]), env));
    const withoutEnv = ALL.filter((f) => f !== "--allow-env" && f !== "--allow-run");
    for (const flags of [[...withoutEnv, "--allow-run"], [...withoutEnv, "--allow-run=sh"]]) {
      const result = await run(flags, { FILELOCK_TEST_VALUE: "passed on" });
      assert.equal(result.code, 0, `${flags.join(" ")}: ${result.stderr}`);
      assert.equal(result.stdout, "value: passed on\nheld: 1\n", flags.join(" "));
      assert.equal(result.stderr, "");
    }
    // Control: what the command shows is its environment, and the lock is free after it.
    const unset = await run([...withoutEnv, "--allow-run"], {});
    assert.equal(unset.stdout, "value: \nheld: 1\n");
    const after = tryAcquire(lock);
    assert.ok(after, "released after the command");
    after.releaseSync();
  }),
);

test(
  `${runtimeName}: deno permissions: descriptor mode without FFI says why and exits 69`,
  inTemp(async (dir) => {
    const lock = join(dir, "fd.lock");
    const onDescriptor = (flags: string[]) =>
      finish(start(["bash", "-c", `exec 9>'${lock}'; exec ${q(deno(flags, ["-n", "9"]))}`]));
    const without = await onDescriptor(["--allow-read", "--allow-write"]);
    assert.equal(without.code, 69, without.stderr);
    assert.match(
      without.stderr,
      /^filelock: locking a descriptor needs the FFI backend \(flock on the shell's own descriptor\), and Deno has no FFI permission for \S+\n$/,
    );
    // Control: with FFI the same descriptor is locked.
    const withFfi = await onDescriptor(["--allow-read", "--allow-write", "--allow-ffi"]);
    assert.equal(withFfi.code, 0, withFfi.stderr);
  }),
);

test(
  `${runtimeName}: deno permissions: without FFI, a missing --allow-read names the flag for the lock file`,
  inTemp(async (dir) => {
    const lock = join(dir, "r.lock");
    const result = await finish(
      start(deno(["--allow-write", "--allow-run", "--allow-env"], [lock, "true"])),
    );
    assert.equal(result.code, 66, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`EACCES: .*Deno refused it: run with --allow-read=${dir}`),
    );
    assert.doesNotMatch(result.stderr, /Uncaught|NotCapable/);
    // The library alone says the same in its error.
    const library = await finish(start([
      bin("deno"),
      "run",
      "--allow-write",
      join(repoRoot, "tests", "workers", "try_once.ts"),
      lock,
      "message",
    ]));
    assert.match(library.stdout, /^EACCES .*--allow-read=/);
  }),
);

test(
  `${runtimeName}: deno permissions: the Quick Start's flags name a flock(1) holder with pid and host`,
  { skip: hasCommand("flock") ? undefined : "util-linux flock(1) is not on PATH" },
  inTemp(async (dir) => {
    const lock = join(dir, "q.lock");
    const holder = spawn("flock", [lock, "sh", "-c", "echo held; exec sleep 60"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    try {
      await waitFor(holder, "held");
      const flags = quickStartFlags();
      const status = await finish(start(deno(flags, ["--status", lock])));
      assert.equal(status.code, 1, status.stderr);
      assert.match(
        status.stdout,
        new RegExp(`held by pid ${holder.pid} on host \\S+ \\(flock, exclusive\\)`),
      );
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
      await exited(holder);
    }
  }),
);
