// The CLI and the library under Deno's permissions (issue 14): a missing flag
// is named in one line, never an uncaught error, and the Quick Start's flags
// give everything, including who holds the lock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  bin,
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

const ALL = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-run", "--allow-env"];

test(
  `${runtimeName}: deno permissions: a missing --allow-env or --allow-run is named, and nothing is locked`,
  inTemp(async (dir) => {
    const lock = join(dir, "e.lock");
    for (
      const [missing, named] of [["--allow-env", /--allow-env/], [
        "--allow-run",
        /--allow-run=true/,
      ]] as const
    ) {
      const result = await finish(start(deno(ALL.filter((f) => f !== missing), [lock, "true"])));
      assert.equal(result.code, 69, `${missing}: ${result.stderr}`);
      assert.match(result.stderr, named);
      assert.doesNotMatch(result.stderr, /Uncaught|NotCapable/);
      assert.equal(result.stderr.trim().split("\n").length, 1, "one line");
      assert.ok(!existsSync(lock), "checked before taking the lock");
    }
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
