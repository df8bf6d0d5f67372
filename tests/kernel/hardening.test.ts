// Kernel locks against the ways they were found to split or wedge (issue 13):
// a lock file planted by another user in /tmp, a fifo at the lock path, a
// filesystem whose flock needs write access.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { LockError, tryAcquire } from "../../mod.ts";
import {
  bin,
  command,
  finish,
  type Finished,
  type Flavour,
  FLAVOURS,
  inTemp,
  repoRoot,
  runtimeName,
  start,
  workers,
} from "../helpers.ts";

const ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const rootSkip = ROOT ? undefined : "needs root, to act as another user (nobody)";
if (!ROOT) console.log(`SKIP kernel tests with another user: ${rootSkip}`);

/** A sticky world-writable directory, like /tmp, with a lock file owned by `nobody`. */
function planted(dir: string): string {
  const sticky = join(dir, "tmp");
  mkdirSync(sticky);
  chmodSync(dir, 0o755);
  chmodSync(sticky, 0o1777);
  const lock = join(sticky, "x.lock");
  writeFileSync(lock, "");
  chownSync(lock, NOBODY, NOBODY);
  return lock;
}

test(
  `${runtimeName}: kernel: a lock file another user planted in a sticky world-writable directory is refused`,
  { skip: rootSkip },
  inTemp((dir) => {
    const lock = planted(dir);
    assert.throws(
      () => tryAcquire(lock),
      (e: unknown) =>
        e instanceof LockError && e.code === "EPERM" &&
        /belongs to uid 65534.*sticky world-writable.*allowForeignOwner/.test(e.message),
    );
    // Where the owner could not split it, it is fine: root's own file, or a
    // directory that is not sticky.
    chownSync(lock, 0, 0);
    tryAcquire(lock)!.releaseSync();
    chownSync(lock, NOBODY, NOBODY);
    chmodSync(join(dir, "tmp"), 0o777);
    tryAcquire(lock)!.releaseSync();
  }),
);

test(
  `${runtimeName}: kernel: control: with allowForeignOwner, the planting user splits the lock between two processes`,
  { skip: rootSkip },
  inTemp(async (dir) => {
    const lock = planted(dir);
    const first = tryAcquire(lock, { allowForeignOwner: true });
    assert.ok(first, "this process holds the planted file");
    try {
      // The other user deletes the file it owns, which the sticky bit allows.
      const removed = spawnSync("runuser", ["-u", "nobody", "--", "rm", lock]);
      assert.equal(removed.status, 0, String(removed.stderr));
      // A second process creates a new file and locks it: two holders.
      const second = await finish(start([...command(FLAVOURS[0], "try_once.ts", [lock])]));
      assert.equal(second.stdout.trim(), "deno-ffi", "the second process holds it too");
    } finally {
      first.releaseSync();
    }
  }),
);

/** How each runtime meets a fifo it may read but not write: Deno without write permission, others as nobody. */
function fifoReader(flavour: string, path: string, extra: string[]): string[] {
  const script = join(workers, "try_once.ts");
  switch (flavour) {
    case "deno":
      return [bin("deno"), "run", `--allow-read=${repoRoot},${path}`, script, path, ...extra];
    case "bun":
      return ["runuser", "-u", "nobody", "--", bin("bun"), script, path, ...extra];
    default:
      return ["runuser", "-u", "nobody", "--", "node", "--import", "tsx", script, path, ...extra];
  }
}

/**
 * Each runtime's attempts (tryAcquire, and acquire with a timeout) at a fifo
 * it may read but not write; an attempt still running after `limitMs` is
 * unblocked by opening the fifo for writing, and reported as having hung.
 */
async function fifoAttempts(dir: string, flags: string[], limitMs: number): Promise<string[]> {
  chmodSync(dir, 0o755);
  const fifo = join(dir, "fifo.lock");
  assert.equal(spawnSync("mkfifo", ["-m", "0644", fifo]).status, 0);
  const results: string[] = [];
  for (const flavour of ["deno", "bun", "node"]) {
    for (const extra of [[], ["wait=300"]]) {
      const child = start(fifoReader(flavour, fifo, [...extra, ...flags]));
      let hung = false;
      // A writer lets a blocked open return (runuser would leave its child if killed);
      // again until it ends, in case it had not reached its open yet.
      const watchdog = setInterval(() => {
        hung = true;
        closeSync(openSync(fifo, "r+"));
      }, limitMs);
      const result: Finished = await finish(child);
      clearInterval(watchdog);
      results.push(
        `${flavour} ${extra}: ${hung ? "hung" : result.signal ?? result.stdout.trim()}`,
      );
    }
  }
  return results;
}

test(
  `${runtimeName}: kernel: a fifo readable but not writable never blocks an attempt, in any runtime`,
  { skip: rootSkip },
  inTemp(async (dir) => {
    for (const result of await fifoAttempts(dir, [], 20_000)) assert.match(result, /: EINVAL$/);
  }),
);

test(
  `${runtimeName}: kernel: control: opens that may wait hang on that fifo`,
  { skip: rootSkip },
  inTemp(async (dir) => {
    const results = await fifoAttempts(dir, ["blocking-open"], 3_000);
    console.log(`# ${results.join("; ")}`);
    for (const result of results) assert.match(result, /: hung$/);
  }),
);

test(
  `${runtimeName}: kernel: flock refused with EBADF on a read-write descriptor is reported as it is`,
  inTemp(async (dir) => {
    // The read-only case (write access needed, as on NFS) runs on a real filesystem:
    // tests/fuse/filesystems.test.ts. No filesystem refuses a read-write descriptor, so
    // this one is faked: EBADF there must not be explained as a missing write access.
    const lock = join(dir, "rw.lock");
    writeFileSync(lock, "");
    const script = join(workers, "try_once.ts");
    const readWrite = await finish(
      start([bin("deno"), "run", "-A", script, lock, "noflock=EBADF", "message"]),
    );
    assert.match(readWrite.stdout, /^EBADF /);
    assert.doesNotMatch(readWrite.stdout, /write access/);
  }),
);

// 17. A synchronous wait for a lock this thread holds, by another path to the
// same file: a symlinked directory, `..`, a hard link; in every kernel backend.
test(
  `${runtimeName}: kernel: acquireSync of a lock this thread holds by another path fails with EDEADLK; control: another file is taken`,
  inTemp(async (dir) => {
    const real = join(dir, "real");
    mkdirSync(join(real, "sub"), { recursive: true });
    symlinkSync(real, join(dir, "link"));
    const lock = join(real, "x.lock");
    writeFileSync(lock, "");
    linkSync(lock, join(real, "hard.lock"));
    const aliases = [
      join(dir, "link", "x.lock"),
      join(real, "sub", "..", "x.lock"),
      join(real, "hard.lock"),
      join(real, "y.lock"),
    ];
    for (const flavour of FLAVOURS) {
      const child = start(command(flavour, "sync_wait.ts", [lock, "aliases", ...aliases]));
      const watchdog = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const result = await finish(child);
      clearTimeout(watchdog);
      assert.equal(result.signal, null, `${flavour} ended by itself: ${result.stdout}`);
      assert.deepEqual(
        result.stdout.trim().split("\n"),
        ["holding", "EDEADLK", "EDEADLK", "EDEADLK", "held"],
        `${flavour}: ${result.stderr}`,
      );
    }
  }),
);

// 7, in Deno without FFI: the owner check needs --allow-sys=uid.
const NATIVE_UID: Flavour = "deno-native";

test(
  `${runtimeName}: kernel: deno-native without --allow-sys=uid says in probe() that the foreign-owner check is off; with it, it does not`,
  async () => {
    const without = await finish(start(command(NATIVE_UID, "report.ts", ["probe"])));
    const reason = JSON.parse(without.stdout).reason;
    assert.match(reason, /deno-native|tryLock/);
    assert.match(reason, /without --allow-sys=uid .*not refused: run with --allow-sys=uid/);
    const argv = command(NATIVE_UID, "report.ts", ["probe"]);
    const withUid = await finish(start([argv[0], argv[1], "--allow-sys=uid", ...argv.slice(2)]));
    assert.doesNotMatch(JSON.parse(withUid.stdout).reason, /allow-sys=uid/);
  },
);

test(
  `${runtimeName}: kernel: deno-native refuses a planted lock file with --allow-sys=uid; control: without it the file is locked`,
  { skip: rootSkip },
  inTemp(async (dir) => {
    const lock = planted(dir);
    const argv = command(NATIVE_UID, "try_once.ts", [lock]);
    const withUid = await finish(start([argv[0], argv[1], "--allow-sys=uid", ...argv.slice(2)]));
    assert.equal(withUid.stdout.trim(), "EPERM", withUid.stderr);
    const without = await finish(start(argv));
    assert.equal(without.stdout.trim(), "deno-native", "the check is off: it locks the file");
  }),
);

// 8. Deno's hint where /proc/locks is not readable.
test(
  `${runtimeName}: kernel: Deno that cannot read /proc/locks says which flag helps; with --allow-ffi it reads it`,
  inTemp(async (dir) => {
    const lock = join(dir, "i.lock");
    const held = tryAcquire(lock)!;
    try {
      const argv = command("deno-native", "report.ts", ["inspect", lock]);
      const blind = JSON.parse((await finish(start(argv))).stdout);
      assert.equal(blind.state, "unknown");
      assert.match(blind.detail, /\/proc\/locks is not readable.*--allow-all.*--allow-ffi/);
      const withFfi = [argv[0], argv[1], "--allow-ffi", ...argv.slice(2)];
      const seen = JSON.parse((await finish(start(withFfi))).stdout);
      assert.equal(seen.state, "held", seen.detail);
    } finally {
      held.releaseSync();
    }
  }),
);
