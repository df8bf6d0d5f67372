// A filesystem without flock (ENOLCK / EOPNOTSUPP): the automatic backend falls
// back to pidfile for that path, an explicit one fails with a clear error.
// `testHooks.flockError` makes flock fail the way it does there; everything
// else is real.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  acquire,
  acquireSync,
  inspect,
  LockError,
  LockTimeoutError,
  probe,
  tryAcquire,
} from "../../mod.ts";
import { testHooks } from "../../src/kernel/engine.ts";
import { countTogether, deadPid, FLAVOURS, runtimeName, tempDir } from "../helpers.ts";
import { hostname } from "node:os";

/** A pidfile record naming `pid` on this host. */
function record(pid: number): string {
  return `${
    JSON.stringify({
      pid,
      hostname: hostname(),
      startToken: null,
      acquiredAt: new Date().toISOString(),
      token: "0123456789abcdef0123456789abcdef",
      backend: "pidfile",
    })
  }\n`;
}

function withoutFlock(
  errno: string,
  fn: (dir: string) => Promise<void> | void,
): () => Promise<void> {
  return async () => {
    const dir = tempDir();
    testHooks.flockError = errno;
    try {
      await fn(dir);
    } finally {
      testHooks.flockError = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const kernelBackend = probe().backend;

for (const errno of ["ENOLCK", "EOPNOTSUPP"]) {
  test(
    `${runtimeName}: no flock (${errno}): an explicit kernel backend fails clearly and removes nothing`,
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
    }),
  );

  test(
    `${runtimeName}: no flock (${errno}): the automatic backend falls back to pidfile`,
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
  `${runtimeName}: no flock: a path that fell back stays pidfile in this process; others do not`,
  withoutFlock("ENOLCK", async (dir) => {
    const path = join(dir, "sticky.lock");
    (await acquire(path)).releaseSync();
    testHooks.flockError = undefined; // flock works again
    const again = await acquire(path);
    assert.equal(again.backend, "pidfile", "no mixing of lock kinds on one path");
    again.releaseSync();
    const other = await acquire(join(dir, "other.lock"));
    assert.equal(other.backend, kernelBackend);
    other.releaseSync();
  }),
);

test(
  `${runtimeName}: no flock: acquireSync without timeout (the kernel-blocking path) falls back`,
  withoutFlock("EOPNOTSUPP", (dir) => {
    const path = join(dir, "blocking.lock");
    const lock = acquireSync(path);
    assert.equal(lock.backend, "pidfile");
    lock.releaseSync();
    assert.ok(!existsSync(path));
  }),
);

test(
  `${runtimeName}: no flock: an old empty lock file left by a kernel user is not a record, and is left alone`,
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
  `${runtimeName}: no flock: control: a fresh empty file someone else made is waited out, not removed`,
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
  `${runtimeName}: no flock here for a moment: the fallback leaves a file a kernel user holds alone`,
  async () => {
    const dir = tempDir();
    const path = join(dir, "held.lock");
    // A stale record in a file that a kernel user now locks (the path changed modes).
    writeFileSync(path, record(await deadPid()));
    const holder = tryAcquire(path); // a kernel lock, while flock works
    assert.ok(holder !== null && holder.backend === kernelBackend);
    const inode = statSync(path).ino;
    testHooks.flockError = "ENOLCK";
    try {
      await assert.rejects(
        acquire(path, { timeout: 100 }),
        (e) => e instanceof LockTimeoutError && /a flock\(2\) user holds the file/.test(e.message),
      );
      assert.equal(statSync(path).ino, inode, "not removed");
      // Control: forced pidfile mode does not ask, and removes the held file.
      const forced = tryAcquire(path, { backend: "pidfile" });
      assert.ok(forced !== null, "the pidfile backend alone reclaims it");
      assert.notEqual(statSync(path).ino, inode);
      forced.releaseSync();
    } finally {
      testHooks.flockError = undefined;
      holder.releaseSync();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  `${runtimeName}: no flock: the fallback removes the file it created, however long it paused`,
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
  `${runtimeName}: no flock: a shared lock is refused, naming the filesystem`,
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

const N = 30;

async function counter(dir: string, mode: "lock" | "nolock"): Promise<number> {
  const { total, lockLeft } = await countTogether(
    dir,
    N,
    FLAVOURS,
    (i) => [mode, `noflock=${i % 2 === 0 ? "ENOLCK" : "EOPNOTSUPP"}`],
  );
  assert.ok(!lockLeft, "the last holder removed the record");
  return total;
}

test(
  `${runtimeName}: no flock: counter across ${FLAVOURS.join(", ")} falling back is exact`,
  async () => {
    const dir = tempDir();
    try {
      assert.equal(await counter(dir, "lock"), N * FLAVOURS.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  `${runtimeName}: no flock: control: the same counter without the lock loses updates`,
  async () => {
    const dir = tempDir();
    try {
      const total = await counter(dir, "nolock");
      assert.notEqual(total, N * FLAVOURS.length, `expected lost updates, got ${total}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
