// A real filesystem without flock (flockfs answering ENOLCK or EOPNOTSUPP): the
// automatic backend falls back to pidfile for that path, an explicit one fails
// with a clear error, and processes of every runtime that fall back still
// exclude each other. What FUSE cannot show (flock working again on the same
// path, a kernel holder seen through a failing flock) stays in
// tests/kernel/fallback.test.ts, through the engine's test hook.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  acquire,
  acquireSync,
  inspect,
  LockError,
  LockTimeoutError,
  tryAcquire,
} from "../../mod.ts";
import { testHooks } from "../../src/kernel/engine.ts";
import { command, countTogether, finish, FLAVOURS, runtimeName, start } from "../helpers.ts";
import { type FlockMode, fuseUnavailable, withFlockfs } from "./fuse.ts";

const reason = fuseUnavailable();
if (reason) console.log(`SKIP fuse fallback: ${reason}`);
const skip = { skip: reason };

const ERRNO: Record<string, FlockMode> = { ENOLCK: "enolck", EOPNOTSUPP: "eopnotsupp" };

/** A test body run in the mount point of a fresh flockfs whose flock fails with `errno`. */
function withoutFlock(errno: string, fn: (dir: string) => Promise<void> | void) {
  return () => withFlockfs(ERRNO[errno]!, (mount) => fn(mount.mountpoint));
}

for (const errno of ["ENOLCK", "EOPNOTSUPP"]) {
  test(
    `${runtimeName}: fuse: no flock (${errno}): an explicit kernel backend fails clearly and removes nothing`,
    skip,
    withoutFlock(errno, (dir) => {
      const path = join(dir, "explicit.lock");
      writeFileSync(path, "data");
      assert.throws(
        () => tryAcquire(path, { backend: "ffi" }),
        (e) =>
          e instanceof LockError && e.code === errno && e.path === path &&
          /does not support flock\(2\).*backend: "pidfile"/.test(e.message),
      );
      assert.equal(readFileSync(path, "utf8"), "data");
      // Even a file the attempt created stays: only a fallback may remove it,
      // and only while no one else can have taken the path.
      const created = join(dir, "created.lock");
      assert.throws(() => tryAcquire(created, { backend: "ffi" }), LockError);
      assert.equal(readFileSync(created, "utf8"), "");
      if (runtimeName === "deno") {
        // Deno's own FsFile lock meets the same filesystem.
        assert.throws(
          () => tryAcquire(path, { backend: "native" }),
          (e) => e instanceof LockError && e.code === errno,
        );
        assert.equal(readFileSync(path, "utf8"), "data");
      }
    }),
  );

  test(
    `${runtimeName}: fuse: no flock (${errno}): the automatic backend falls back to pidfile`,
    skip,
    withoutFlock(errno, async (dir) => {
      const path = join(dir, "auto.lock");
      const lock = tryAcquire(path);
      assert.ok(lock !== null, "a missing lock file is taken at once, no grace period");
      assert.equal(lock.backend, "pidfile");
      const record = JSON.parse(readFileSync(path, "utf8"));
      assert.equal(record.pid, process.pid);
      assert.equal(record.backend, "pidfile");
      assert.equal(tryAcquire(path), null, "held");
      const status = inspect(path);
      assert.equal(status.state, "held");
      assert.equal(status.holders[0]?.pid, process.pid);
      assert.equal(status.holders[0]?.backend, "pidfile");
      assert.equal(status.fsType, "fuse");
      await assert.rejects(
        acquire(path, { timeout: 100 }),
        (e) => e instanceof LockTimeoutError && e.message.includes(`pid ${process.pid}`),
      );
      lock.releaseSync();
      assert.ok(!existsSync(path), "released: the record is gone");
    }),
  );
}

test(
  `${runtimeName}: fuse: no flock: acquireSync without timeout (the kernel-blocking path) falls back`,
  skip,
  withoutFlock("EOPNOTSUPP", (dir) => {
    const path = join(dir, "blocking.lock");
    const lock = acquireSync(path);
    assert.equal(lock.backend, "pidfile");
    lock.releaseSync();
    assert.ok(!existsSync(path));
  }),
);

test(
  `${runtimeName}: fuse: no flock: an old empty lock file left by a kernel user is not a record, and is left alone`,
  skip,
  withoutFlock("ENOLCK", async (dir) => {
    const path = join(dir, "old.lock");
    writeFileSync(path, "");
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const inode = statSync(path).ino;
    await assert.rejects(
      acquire(path, { timeout: 1000 }),
      (e) =>
        e instanceof LockError && !(e instanceof LockTimeoutError) && e.code === "EINVAL" &&
        /is empty and is not a lock record.*left alone/.test(e.message),
    );
    assert.equal(statSync(path).ino, inode, "not removed");
    assert.equal(readFileSync(path, "utf8"), "");
  }),
);

test(
  `${runtimeName}: fuse: no flock: a user's data file at the lock path is never removed`,
  skip,
  withoutFlock("ENOLCK", async (dir) => {
    const path = join(dir, "settings.json");
    writeFileSync(path, '{"theme":"dark"}\n');
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    await assert.rejects(
      acquire(path, { timeout: 300 }),
      (e) => e instanceof LockError && e.code === "EINVAL" && /not a lock record/.test(e.message),
    );
    assert.equal(readFileSync(path, "utf8"), '{"theme":"dark"}\n');
  }),
);

test(
  `${runtimeName}: fuse: no flock: control: a fresh empty file someone else made is waited out, not removed`,
  skip,
  withoutFlock("ENOLCK", (dir) => {
    // The file may be a pidfile writer's between create and write: this is
    // why a fallback removes the file it created itself.
    const path = join(dir, "fresh.lock");
    writeFileSync(path, "");
    const before = statSync(path).ino;
    assert.equal(tryAcquire(path), null);
    assert.equal(statSync(path).ino, before);
    assert.equal(readFileSync(path, "utf8"), "");
  }),
);

test(
  `${runtimeName}: fuse: no flock: the fallback removes the file it created, however long it paused`,
  skip,
  withoutFlock("ENOLCK", (dir) => {
    // Nobody else removes a file that holds no record, so the one at the
    // path is still the one this attempt created (checked against its
    // descriptor): removing it cannot remove anyone else's.
    const path = join(dir, "slow.lock");
    testHooks.afterOpen = () => {
      const until = performance.now() + 600;
      while (performance.now() < until) { /* a stalled process */ }
    };
    try {
      const lock = tryAcquire(path);
      assert.ok(lock !== null && lock.backend === "pidfile");
      assert.equal(JSON.parse(readFileSync(path, "utf8")).pid, process.pid);
      lock.releaseSync();
      assert.ok(!existsSync(path));
    } finally {
      testHooks.afterOpen = undefined;
    }
  }),
);

test(
  `${runtimeName}: fuse: no flock: a shared lock is refused, naming the filesystem`,
  skip,
  withoutFlock("ENOLCK", (dir) => {
    const path = join(dir, "shared.lock");
    assert.throws(
      () => tryAcquire(path, { shared: true }),
      (e) =>
        e instanceof LockError && e.code === "EUNSUPPORTED" &&
        /does not support flock\(2\).*exclusive locks only/.test(e.message),
    );
    assert.ok(!existsSync(path));
  }),
);

test(
  `${runtimeName}: fuse: no flock: the fallback warns once on stderr; FILELOCK_WARNINGS=off silences it`,
  skip,
  withoutFlock("ENOLCK", async (dir) => {
    for (const flavour of ["deno-ffi", "node"] as const) {
      const argv = command(flavour, "try_once.ts", [join(dir, `${flavour}.lock`)]);
      const warned = await finish(start(argv));
      assert.equal(warned.stdout.trim(), "pidfile", warned.stderr);
      const warnings = warned.stderr.split("\n").filter((l) => l.startsWith("filelock: warning:"));
      assert.equal(warnings.length, 1, warned.stderr);
      assert.match(warnings[0]!, /has no flock\(2\).*FILELOCK_WARNINGS=off/);
      const quiet = await finish(start(argv, { FILELOCK_WARNINGS: "off" }));
      assert.equal(quiet.stdout.trim(), "pidfile", quiet.stderr);
      assert.doesNotMatch(quiet.stderr, /warning/);
    }
  }),
);

const N = 30;

/** The counter of every flavour on one flockfs without flock, with or without the lock. */
async function counter(errno: string, mode: "lock" | "nolock"): Promise<number> {
  let total = NaN;
  await withoutFlock(errno, async (dir) => {
    const counted = await countTogether(
      dir,
      N,
      FLAVOURS,
      () => mode === "lock" ? [mode, "fallback"] : [mode],
    );
    assert.ok(!counted.lockLeft, "the last holder removed the record");
    total = counted.total;
  })();
  return total;
}

for (const errno of ["ENOLCK", "EOPNOTSUPP"]) {
  test(
    `${runtimeName}: fuse: no flock (${errno}): counter across ${
      FLAVOURS.join(", ")
    } falling back is exact`,
    skip,
    async () => {
      assert.equal(await counter(errno, "lock"), N * FLAVOURS.length);
    },
  );
}

test(
  `${runtimeName}: fuse: no flock: control: the same counter without the lock loses updates`,
  skip,
  async () => {
    const total = await counter("ENOLCK", "nolock");
    assert.notEqual(total, N * FLAVOURS.length, `expected lost updates, got ${total}`);
  },
);
