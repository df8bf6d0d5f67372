// A filesystem without flock, where a real one cannot show it: flock working
// again on a path that fell back, and a kernel holder that a failing flock
// cannot see. `testHooks.flockError` makes flock fail the way it does there;
// everything else is real. The rest of the fallback runs on a real filesystem
// without flock: tests/fuse/fallback.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { acquire, LockTimeoutError, probe, tryAcquire } from "../../mod.ts";
import { testHooks } from "../../src/kernel/engine.ts";
import { deadPid, pidfileRecord, runtimeName, tempDir } from "../helpers.ts";

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
  `${runtimeName}: no flock here for a moment: the fallback leaves a file a kernel user holds alone`,
  async () => {
    const dir = tempDir();
    const path = join(dir, "held.lock");
    // A stale record in a file that a kernel user now locks (the path changed modes).
    writeFileSync(path, pidfileRecord({ pid: await deadPid() }));
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
