// -F (--no-fork) hands the command the process as flock(1) would (issue 15):
// the runtime's own ignored signals back to their default, O_NONBLOCK off the
// standard descriptors; and it says so, exit 69, where it cannot keep the lock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tryAcquire } from "../../mod.ts";
import {
  bin,
  cliArgv,
  finish,
  type Finished,
  hasCommand,
  inTemp,
  repoRoot,
  runtimeName,
  start,
} from "../helpers.ts";

const FLOCK = hasCommand("flock");
const flockSkip = FLOCK ? undefined : "util-linux flock(1) is not on PATH";
if (!FLOCK) console.log(`SKIP -F side by side with flock(1): ${flockSkip}`);

const q = (words: string[]): string => words.map((w) => `'${w}'`).join(" ");
const bash = (script: string): Promise<Finished> => finish(start(["bash", "-c", script]));

/** `filelock -F` in this runtime, and flock(1) -F, as shell words. */
const lockers = (): [string, string][] => [["filelock", q(cliArgv(["-F"]))], [
  "flock(1)",
  "flock -F",
]];

test(
  `${runtimeName}: cli -F: a command killed by SIGPIPE dies of it, silently, as under flock(1)`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const lock = join(dir, "p.lock");
    for (const [name, locker] of lockers()) {
      const result = await bash(`${locker} '${lock}' yes | head -1; echo "rc=\${PIPESTATUS[0]}"`);
      assert.equal(result.stdout, "y\nrc=141\n", `${name}: ${result.stderr}`);
      assert.equal(result.stderr, "", `${name}: no "Broken pipe"`);
    }
    // Control: with SIGPIPE ignored, as a runtime ignores it, yes(1) reports the error instead.
    const ignored = await bash(
      `trap '' PIPE; flock -F '${lock}' yes | head -1; echo "rc=\${PIPESTATUS[0]}"`,
    );
    assert.equal(ignored.stdout, "y\nrc=1\n");
    assert.match(ignored.stderr, /Broken pipe/);
  }),
);

/**
 * The ignored and blocked signals of `sh -c` run by `locker` (after `setup`),
 * 1 to 31 only: glibc's own real-time signals 32 and 33 are left ignored by
 * posix_spawn (as the test runner of one runtime or another starts bash) and
 * caught by multi-threaded processes, whatever flock(1) or filelock do.
 */
async function dispositions(locker: string, lock: string, setup = ""): Promise<string> {
  const result = await bash(
    `${setup}${locker} '${lock}' sh -c 'grep -E "^Sig(Ign|Blk)" /proc/self/status'`,
  );
  assert.equal(result.code, 0, `${locker}: ${result.stderr}`);
  return result.stdout.replace(
    /^(Sig\w+):\s+([0-9a-f]+)$/gm,
    (_, name, mask) => `${name}: ${(BigInt(`0x${mask}`) & 0x7fffffffn).toString(16)}`,
  );
}

test(
  `${runtimeName}: cli -F: the command's signal dispositions and mask are flock(1)'s`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const lock = join(dir, "s.lock");
    const [ours, theirs] = await Promise.all(
      lockers().map(([, locker]) => dispositions(locker, lock)),
    );
    assert.equal(ours, theirs);
    assert.equal(theirs, "SigBlk: 0\nSigIgn: 0\n", "nothing ignored or blocked to begin with");
    // A signal the parent ignored (nohup's SIGHUP) stays ignored, as flock(1) leaves it, where
    // the runtime kept it; Node resets every inherited disposition when it starts.
    const [hupOurs, hupTheirs] = await Promise.all(
      lockers().map(([, locker]) => dispositions(locker, lock, "trap '' HUP; ")),
    );
    assert.equal(hupTheirs, "SigBlk: 0\nSigIgn: 1\n", "flock(1): SIGHUP ignored");
    assert.equal(hupOurs, runtimeName === "node" ? theirs : hupTheirs);
  }),
);

test(
  `${runtimeName}: cli -F: the command's standard descriptors block, so a full pipe loses nothing`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const lock = join(dir, "b.lock");
    const count = (locker: string, command: string) =>
      bash(`${locker} '${lock}' ${command} 2>&1 | (sleep 1; wc -c)`);
    const flags = `sh -c 'for fd in 0 1 2; do grep flags /proc/self/fdinfo/$fd; done' </dev/null`;
    for (const [name, locker] of lockers()) {
      const result = await count(locker, `sh -c 'head -c 5000000 /dev/zero'`);
      assert.equal(result.stdout.trim(), "5000000", `${name}: ${result.stderr}`);
      // O_NONBLOCK is 04000 in the octal flags of fdinfo.
      const shown = await bash(`${locker} '${lock}' ${flags} 2>&1 | cat`);
      const values = [...shown.stdout.matchAll(/flags:\s+(\d+)/g)].map((m) => parseInt(m[1], 8));
      assert.equal(values.length, 3, `${name}: ${shown.stdout}${shown.stderr}`);
      for (const value of values) assert.equal(value & 0o4000, 0, `${name}: ${shown.stdout}`);
    }
    if (hasCommand("python3")) {
      // Control: a command whose stdout is non-blocking loses output on the full pipe.
      const nonBlocking = "python3 -c 'import fcntl, os; " +
        "fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_NONBLOCK); " +
        `os.execvp("head", ["head", "-c", "5000000", "/dev/zero"])'`;
      const lost = await count("flock -F", nonBlocking);
      assert.notEqual(lost.stdout.trim(), "5000000", "the control lost data");
    }
  }),
);

const CLI = join(repoRoot, "src", "cli", "main.ts");

test(
  `${runtimeName}: cli -F: where the lock cannot survive exec it says why and exits 69, lock released`,
  inTemp(async (dir) => {
    const lock = join(dir, "n.lock");
    const deno = (flags: string[], args: string[]) =>
      finish(start([bin("deno"), "run", ...flags, CLI, ...args]));
    const marker = join(dir, "ran");
    const command = ["sh", "-c", `touch '${marker}'`];
    // Deno without FFI locks with Deno.FsFile, whose descriptor is not the OS's.
    const cases: [string, Promise<Finished>][] = [
      [
        "deno without --allow-ffi",
        deno(["--allow-read", "--allow-write"], ["-F", lock, ...command]),
      ],
      ["deno --backend native", deno(["-A"], ["-F", "--backend", "native", lock, ...command])],
    ];
    for (const [name, running] of cases) {
      const result = await running;
      assert.equal(result.code, 69, `${name}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /^filelock: -F \(--no-fork\) needs the FFI backend with its own descriptors to keep the lock across exec; this process locked with deno-native/,
        name,
      );
      assert.equal(result.stderr.trim().split("\n").length, 1, `${name}: one line`);
      assert.ok(!existsSync(marker), `${name}: the command did not run`);
      const next = tryAcquire(lock);
      assert.ok(next, `${name}: the lock was released`);
      next.releaseSync();
    }
    // Control: with FFI it execs the command, in this runtime and in Deno.
    for (
      const argv of [cliArgv(["-F", lock, ...command]), [
        bin("deno"),
        "run",
        "-A",
        CLI,
        "-F",
        lock,
        ...command,
      ]]
    ) {
      const result = await finish(start(argv));
      assert.equal(result.code, 0, result.stderr);
      assert.ok(existsSync(marker));
    }
  }),
);
