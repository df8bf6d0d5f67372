// The command's descriptors (issue 15): every descriptor the shell passed to
// filelock reaches the command as itself, as under flock(1), and the lock
// takes a number nobody passed in (`3>out.txt` is the command's 3, not the
// lock file).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inheritedAmong, type InheritedMarking } from "../../src/cli/descriptors.ts";
import type { OpenDescriptor } from "../../ffi/open_descriptors.ts";
import {
  cliArgv,
  finish,
  type Finished,
  hasCommand,
  inTemp,
  runtimeName,
  start,
} from "../helpers.ts";

const FLOCK = hasCommand("flock");
const flockSkip = FLOCK ? undefined : "util-linux flock(1) is not on PATH";
if (!FLOCK) console.log(`SKIP descriptors side by side with flock(1): ${flockSkip}`);

const q = (words: string[]): string => words.map((w) => `'${w}'`).join(" ");
const bash = (script: string): Promise<Finished> => finish(start(["bash", "-c", script]));

/** filelock (and -F) in this runtime, then flock(1) (and -F), as shell words. */
const LOCKERS: [string, string][] = [
  ["filelock", q(cliArgv())],
  ["filelock -F", q(cliArgv(["-F"]))],
  ["flock(1)", "flock"],
  ["flock(1) -F", "flock -F"],
];

test(
  `${runtimeName}: cli: a descriptor the shell opened for the command is the command's, not the lock's`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    for (const [name, locker] of LOCKERS) {
      const lock = join(dir, `${name}.lock`);
      const out = join(dir, `${name}.out`);
      const result = await bash(`${locker} '${lock}' sh -c 'echo x >&3' 3>'${out}'`);
      assert.equal(result.code, 0, `${name}: ${result.stderr}`);
      assert.equal(readFileSync(out, "utf8"), "x\n", `${name}: the command's 3 is out.txt`);
      assert.equal(readFileSync(lock, "utf8"), "", `${name}: nothing written into the lock file`);
    }
  }),
);

test(
  `${runtimeName}: cli: descriptors the shell passed to filelock reach the command`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    for (const [name, locker] of LOCKERS) {
      const lock = join(dir, `${name}.lock`);
      const log = join(dir, `${name}.log`);
      // 9 is opened by the shell for filelock (inherited), 3 only for the command.
      const result = await bash(
        `exec 9>'${log}'; ${locker} '${lock}' sh -c 'echo nine >&9; echo three >&3' 3>&9`,
      );
      assert.equal(result.code, 0, `${name}: ${result.stderr}`);
      assert.equal(readFileSync(log, "utf8"), "nine\nthree\n", name);
    }
    // Control: where the shell opened nothing, the command's write fails.
    const [, locker] = LOCKERS[0];
    const lone = await bash(`${locker} '${join(dir, "c.lock")}' sh -c 'echo nine >&9'`);
    assert.notEqual(lone.code, 0);
    assert.match(lone.stderr, /9: Bad file descriptor/);
  }),
);

/**
 * The command's descriptors, as `ls -l /proc/self/fd` shows them (ls's own
 * directory left out), when the shell passes 3 (to the command), 7 and 9.
 */
async function descriptorsOf(
  locker: string,
  lock: string,
  dir: string,
): Promise<Map<number, string>> {
  const result = await bash(
    `exec 9>'${join(dir, "nine")}' 7<'${lock}'; ${locker} '${lock}' ls -l /proc/self/fd 3>'${
      join(dir, "three")
    }'`,
  );
  assert.equal(result.code, 0, `${locker}: ${result.stderr}`);
  const found = new Map<number, string>();
  for (const [, fd, target] of result.stdout.matchAll(/ (\d+) -> (.*)$/gm)) {
    // Each run has its own stdout and stderr pipes: compare their kind, not their inode.
    if (!target.startsWith("/proc/")) found.set(Number(fd), target.replace(/:\[\d+\]$/, ""));
  }
  return found;
}

test(
  `${runtimeName}: cli: the command gets the descriptors flock(1)'s would, and the lock at a free number`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const lock = join(dir, "all.lock");
    writeFileSync(lock, ""); // for the shell's 7<
    for (const [name, locker] of [LOCKERS[0], LOCKERS[1]]) {
      const [ours, theirs] = await Promise.all([
        descriptorsOf(locker, lock, dir),
        descriptorsOf(name.endsWith("-F") ? "flock -F" : "flock", lock, dir),
      ]);
      // One descriptor more than the shell passed in: the lock, wherever it is.
      const lockAt = (found: Map<number, string>) =>
        [...found].filter(([fd, target]) => target === lock && fd !== 7).map(([fd]) => fd);
      assert.equal(lockAt(ours).length, 1, `${name}: ${JSON.stringify([...ours])}`);
      assert.equal(lockAt(theirs).length, 1);
      assert.ok(![0, 1, 2, 3, 7, 9].includes(lockAt(ours)[0]), "not a number the shell passed");
      for (const found of [ours, theirs]) found.delete(lockAt(found)[0]);
      assert.deepEqual(
        [...ours].sort(([a], [b]) => a - b),
        [...theirs].sort(([a], [b]) => a - b),
        `${name}: the same descriptors as flock(1)'s command`,
      );
      assert.equal(ours.get(3), join(dir, "three"));
      assert.equal(ours.get(9), join(dir, "nine"));
    }
  }),
);

/** An open descriptor, as `/proc/self` shows it. */
const open = (
  fd: number,
  target: string,
  closeOnExec = true,
  access: OpenDescriptor["access"] = "read-write",
): OpenDescriptor => ({ fd, target, closeOnExec, access });

test(`${runtimeName}: cli: which descriptors a runtime inherited, told from its own`, () => {
  const shells = [open(0, "/dev/null", true, "read"), open(1, "pipe:[1]", true, "write")];
  const runtimeOwn = [
    open(3, "anon_inode:[eventpoll]"),
    open(4, "pipe:[7]", true, "read"),
    open(5, "pipe:[7]", true, "write"),
    open(6, "anon_inode:[eventfd]"),
  ];
  const inherited = [
    open(8, "/srv/out.log", true, "write"),
    open(9, "pipe:[8]", true, "write"), // a pipe to another process: one end here
    open(10, "socket:[9]"),
    open(11, "/dev/pts/3"),
  ];
  const all = (marking: InheritedMarking, more: OpenDescriptor[] = []) =>
    inheritedAmong([...shells, ...runtimeOwn, ...inherited, ...more], marking);
  assert.deepEqual(all("all"), [8, 9, 10, 11], "Bun: all but the runtime's own");
  assert.deepEqual(all("none"), [], "Deno: close-on-exec ones are the runtime's");
  assert.deepEqual(
    all("none", [open(12, "/srv/passed", false)]),
    [12],
    "not close-on-exec: inherited, in every runtime",
  );
  // libuv marked 0 to 15, and on while the numbers were taken when Node started: a runtime
  // descriptor at 16 or above took a free number, so nothing above it was marked.
  assert.deepEqual(
    all("libuv", [open(16, "anon_inode:[eventpoll]"), open(18, "/dev/null")]),
    [8, 9, 10, 11],
  );
  assert.deepEqual(
    all("libuv", [open(16, "/srv/a"), open(17, "/srv/b"), open(18, "anon_inode:[eventfd]")]),
    [8, 9, 10, 11, 16, 17],
  );
  assert.deepEqual(all("libuv", [open(251, "pipe:[5]", false, "write")]), [8, 9, 10, 11, 251]);
  // A copy of the shell's stdout (`3>&1`) is the shell's, though the pipe shows twice.
  assert.deepEqual(
    inheritedAmong([open(1, "pipe:[1]", true, "write"), open(3, "pipe:[1]", true, "write")], "all"),
    [3],
  );
});
