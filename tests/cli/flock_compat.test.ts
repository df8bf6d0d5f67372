// filelock as a drop-in flock(1) (issue 15): the shell's descriptor mode
// (`exec 200>lock; filelock -w 30 200; ...; filelock -u 200`) interleaved with
// flock(1) and the library, -F replacing the process, directories as lock
// paths, and --status on a path whose directory does not exist.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { acquire, LockError, tryAcquire } from "../../mod.ts";
import {
  cliArgv,
  command,
  exited,
  finish,
  type Flavour,
  hasCommand,
  inTemp,
  runtimeName,
  start,
  waitFor,
} from "../helpers.ts";

const FLOCK = hasCommand("flock");
const flockSkip = FLOCK ? undefined : "util-linux flock(1) is not on PATH";
if (!FLOCK) console.log(`SKIP flock(1) compatibility tests: ${flockSkip}`);

/** The CLI in this test's own runtime, as one shell word list. */
const cli = (): string[] => cliArgv();
const OWN: Flavour = runtimeName === "deno" ? "deno-ffi" : runtimeName as Flavour;

/**
 * A shell loop that increments the counter `n` times, each time under the
 * lock taken on descriptor 200 by `locker` (a command line: filelock or
 * flock(1)), released with `locker -u 200`; without a locker, no lock.
 */
function shellLoop(
  lock: string,
  counter: string,
  n: number,
  locker: string[] | undefined,
): string[] {
  const q = (words: string[]) => words.map((w) => `'${w}'`).join(" ");
  const take = locker ? `${q(locker)} -w 30 200 || exit 1` : ":";
  const drop = locker ? `${q(locker)} -u 200 || exit 1` : ":";
  return [
    "bash",
    "-c",
    `exec 200>'${lock}'
for i in $(seq ${n}); do
  ${take}
  v=$(cat '${counter}'); sleep 0.01; echo $((v+1)) > '${counter}'
  ${drop}
done`,
  ];
}

async function shellCounter(dir: string, locked: boolean): Promise<number> {
  const lock = join(dir, "s.lock");
  const counter = join(dir, "counter");
  writeFileSync(counter, "0");
  const n = 8;
  const runs = [
    shellLoop(lock, counter, n, locked ? cli() : undefined),
    shellLoop(lock, counter, n, locked ? ["flock"] : undefined),
    command(OWN, "counter.ts", [lock, counter, String(n), locked ? "lock" : "nolock"]),
  ];
  const results = await Promise.all(runs.map((argv) => finish(start(argv))));
  results.forEach((r, i) => assert.equal(r.code, 0, `${runs[i].join(" ")}: ${r.stderr}`));
  return Number(readFileSync(counter, "utf8"));
}

test(
  `${runtimeName}: flock(1) compat: the shell's descriptor mode with filelock, flock(1) and the library is exact`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    assert.equal(await shellCounter(dir, true), 24);
  }),
);

test(
  `${runtimeName}: flock(1) compat: control: the same loops without the lock lose updates`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const total = await shellCounter(dir, false);
    assert.notEqual(total, 24, `expected lost updates, got ${total}`);
  }),
);

test(
  `${runtimeName}: flock(1) compat: the lock on a descriptor outlives filelock, until -u`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const lock = join(dir, "d.lock");
    const q = (words: string[]) => words.map((w) => `'${w}'`).join(" ");
    const script = `exec 9>'${lock}'
${q(cli())} -n 9 || exit 10
flock -n '${lock}' true && exit 11   # held by this shell's descriptor
${q(cli())} -u 9 || exit 12
flock -n '${lock}' true || exit 13   # free again
${q(cli())} -n 77; echo "bad descriptor: $?"`;
    const result = await finish(start(["bash", "-c", script]));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "bad descriptor: 65\n");
    assert.equal(result.stderr.replace(/^\S+: /, "flock: "), "flock: 77: Bad file descriptor\n");
  }),
);

test(
  `${runtimeName}: flock(1) compat: -F replaces filelock with the command, which holds the lock`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const lock = join(dir, "f.lock");
    const child = start([
      ...cli(),
      "-F",
      lock,
      "sh",
      "-c",
      `echo "pid $$"; flock -n '${lock}' true; echo "flock(1) got it: $?"; exit 7`,
    ]);
    const result = await finish(child);
    assert.equal(result.code, 7, `the command's own exit code: ${result.stderr}`);
    assert.equal(
      result.stdout,
      `pid ${child.pid}\nflock(1) got it: 1\n`,
      "same process, lock held",
    );
    const missing = await finish(start([...cli(), "-F", lock, "no-such-command-here"]));
    assert.equal(missing.code, 69);
    assert.match(
      missing.stderr,
      /failed to execute no-such-command-here: No such file or directory/,
    );
    tryAcquire(lock)!.releaseSync(); // nothing left held
  }),
);

test(
  `${runtimeName}: flock(1) compat: a directory is a lock path, for the CLI and the library`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const locked = join(dir, "repo");
    mkdirSync(locked);
    const inside = await finish(start([
      ...cli(),
      locked,
      "sh",
      "-c",
      `flock -n '${locked}' true; echo $?`,
    ]));
    assert.equal(inside.stdout, "1\n", "flock(1) is refused while filelock holds the directory");
    const holder = spawn("flock", [locked, "sh", "-c", "echo held; exec sleep 60"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    try {
      await waitFor(holder, "held");
      assert.equal((await finish(start([...cli(), "-n", locked, "true"]))).code, 1);
      assert.equal(tryAcquire(locked), null, "the library sees flock(1)'s lock on the directory");
      const status = await finish(start([...cli(), "--status", locked]));
      assert.equal(status.code, 1);
      assert.match(status.stdout, new RegExp(`held by pid ${holder.pid}`));
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
      await exited(holder);
    }
    const lock = await acquire(locked, { timeout: 10_000 });
    assert.equal(lock.path, locked);
    lock.releaseSync();
    // What cannot be done with a directory is refused, clearly.
    assert.throws(
      () => tryAcquire(locked, { removeOnRelease: true }),
      (e: unknown) =>
        e instanceof LockError && e.code === "EISDIR" && /removeOnRelease/.test(e.message),
    );
    assert.throws(
      () => tryAcquire(locked, { backend: "pidfile" }),
      (e: unknown) => e instanceof LockError && e.code === "EISDIR",
    );
  }),
);

test(
  `${runtimeName}: flock(1) compat: --status on a path whose directory does not exist is an error (66)`,
  inTemp(async (dir) => {
    const result = await finish(start([...cli(), "--status", join(dir, "missing", "x.lock")]));
    assert.equal(result.code, 66, result.stdout);
    assert.match(result.stderr, /ENOENT: the directory of the lock file does not exist/);
    const free = await finish(start([...cli(), "--status", join(dir, "x.lock")]));
    assert.equal(free.code, 0, "a missing lock file in an existing directory is free");
  }),
);

test(
  `${runtimeName}: flock(1) compat: an ambiguous abbreviation is reported in flock(1)'s words`,
  { skip: flockSkip },
  async () => {
    for (const abbreviation of ["--n", "--no", "--c", "--ver"]) {
      const [ours, theirs] = await Promise.all([
        finish(start([...cli(), abbreviation, "x.lock", "true"])),
        finish(start(["flock", abbreviation, "x.lock", "true"])),
      ]);
      assert.equal(ours.code, theirs.code, abbreviation);
      // The first line; the second names each program's --help.
      const first = (text: string) => text.split("\n")[0].replace(/^\S+: /, "flock: ");
      assert.equal(first(ours.stderr), first(theirs.stderr), abbreviation);
    }
  },
);
