import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  acquire,
  acquireSync,
  LockError,
  LockTimeoutError,
  probe,
  tryAcquire,
  withLock,
} from "../mod.ts";
import {
  bin,
  finish,
  inTemp,
  openDescriptors,
  repoRoot,
  runtimeName,
  start,
  tempDir,
  workers,
} from "./helpers.ts";

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => e instanceof LockError && e.code === code);
}

const expectedBackend = { deno: "deno-ffi", bun: "bun-ffi", node: "node-koffi" }[runtimeName];

test(`${runtimeName}: probe picks the FFI backend and says why`, () => {
  const result = probe();
  assert.equal(result.runtime, runtimeName);
  assert.equal(result.os, "linux");
  assert.equal(result.backend, expectedBackend);
  assert.equal(result.degraded, false);
  assert.ok(result.reason.length > 10);
});

test(`${runtimeName}: unmet explicit backend requests throw EUNSUPPORTED`, () => {
  assert.throws(
    () => tryAcquire("/tmp/never-created.lock", { backend: "pidfile", shared: true }),
    (e: unknown) =>
      e instanceof LockError && e.code === "EUNSUPPORTED" && /exclusive locks only/.test(e.message),
  );
  if (runtimeName !== "deno") {
    assert.throws(
      () => probe({ backend: "native" }),
      (e: unknown) => (e as LockError).code === "EUNSUPPORTED",
    );
  }
});

test(
  `${runtimeName}: two locks in one process exclude each other`,
  inTemp((dir) => {
    const path = join(dir, "a.lock");
    const first = tryAcquire(path);
    assert.ok(first);
    assert.equal(first.backend, expectedBackend);
    assert.equal(first.path, path);
    assert.equal(tryAcquire(path), null);
    first.releaseSync();
    assert.equal(first.released, true);
    const second = tryAcquire(path);
    assert.ok(second);
    second.releaseSync();
  }),
);

test(
  `${runtimeName}: URL paths and relative paths resolve to absolute`,
  inTemp((dir) => {
    const lock = tryAcquire(pathToFileURL(join(dir, "u.lock")));
    assert.ok(lock);
    assert.equal(lock.path, join(dir, "u.lock"));
    lock.releaseSync();
  }),
);

test(
  `${runtimeName}: timeout rejects with LockTimeoutError`,
  inTemp(async (dir) => {
    const path = join(dir, "t.lock");
    const holder = tryAcquire(path)!;
    const started = performance.now();
    await assert.rejects(
      acquire(path, { timeout: 100 }),
      (e: unknown) => e instanceof LockTimeoutError && e.code === "ETIMEDOUT" && e.path === path,
    );
    assert.ok(performance.now() - started >= 90);
    await assert.rejects(acquire(path, { timeout: 0 }), LockTimeoutError);
    // This thread holds it: a synchronous wait would wait for itself.
    assert.throws(
      () => acquireSync(path, { timeout: 50 }),
      (e: unknown) => e instanceof LockError && e.code === "EDEADLK",
    );
    holder.releaseSync();
    (await acquire(path, { timeout: 0 })).releaseSync();
  }),
);

test(
  `${runtimeName}: a waiter gets the lock when the holder releases`,
  inTemp(async (dir) => {
    const path = join(dir, "w.lock");
    const holder = tryAcquire(path)!;
    setTimeout(() => holder.releaseSync(), 50);
    const lock = await acquire(path, { timeout: 5000 });
    assert.equal(holder.released, true);
    await lock.release();
  }),
);

test(
  `${runtimeName}: abort before and during the wait rejects with signal.reason`,
  inTemp(async (dir) => {
    const path = join(dir, "ab.lock");
    const holder = tryAcquire(path)!;
    const reason = new Error("stop");
    await assert.rejects(acquire(path, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.throws(
      () => acquireSync(path, { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(reason), 60);
    await assert.rejects(acquire(path, { signal: controller.signal }), (e) => e === reason);
    assert.ok(performance.now() - started < 1000, "abort wakes the waiter at once");
    holder.releaseSync();
    // Abort before the wait wins even when the lock is free.
    await assert.rejects(acquire(path, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
  }),
);

test(
  `${runtimeName}: shared locks coexist and exclude exclusive ones`,
  inTemp((dir) => {
    const path = join(dir, "s.lock");
    const a = tryAcquire(path, { shared: true })!;
    const b = tryAcquire(path, { shared: true })!;
    assert.ok(a && b);
    assert.equal(a.shared, true);
    assert.equal(tryAcquire(path), null);
    a.releaseSync();
    assert.equal(tryAcquire(path), null);
    b.releaseSync();
    const x = tryAcquire(path)!;
    assert.ok(x);
    assert.equal(tryAcquire(path, { shared: true }), null);
    x.releaseSync();
  }),
);

test(
  `${runtimeName}: using and await using release at scope end`,
  inTemp(async (dir) => {
    const path = join(dir, "d.lock");
    {
      using lock = acquireSync(path);
      assert.equal(lock.released, false);
      assert.equal(tryAcquire(path), null);
    }
    {
      await using lock = await acquire(path);
      assert.equal(tryAcquire(path), null);
      assert.equal(lock.released, false);
    }
    const again = tryAcquire(path);
    assert.ok(again);
    again.releaseSync();
  }),
);

test(
  `${runtimeName}: withLock returns the result and releases on throw`,
  inTemp(async (dir) => {
    const path = join(dir, "wl.lock");
    assert.equal(await withLock(path, () => 42), 42);
    await assert.rejects(
      withLock(path, () => {
        assert.equal(tryAcquire(path), null);
        throw new Error("boom");
      }),
      /boom/,
    );
    const lock = tryAcquire(path);
    assert.ok(lock, "released after the throw");
    lock.releaseSync();
  }),
);

test(
  `${runtimeName}: release twice is harmless`,
  inTemp(async (dir) => {
    const lock = tryAcquire(join(dir, "r.lock"))!;
    await lock.release();
    await lock.release();
    lock.releaseSync();
    assert.equal(lock.released, true);
  }),
);

test(
  `${runtimeName}: removeOnRelease unlinks only exclusive locks; default keeps the file and its content`,
  inTemp((dir) => {
    const path = join(dir, "rm.lock");
    writeFileSync(path, "keep me");
    tryAcquire(path)!.releaseSync();
    assert.equal(readFileSync(path, "utf8"), "keep me", "content never touched");
    tryAcquire(path, { shared: true, removeOnRelease: true })!.releaseSync();
    assert.equal(readFileSync(path, "utf8"), "keep me", "shared holder never unlinks");
    tryAcquire(path, { removeOnRelease: true })!.releaseSync();
    assert.throws(() => readFileSync(path), /ENOENT/);
  }),
);

test(
  `${runtimeName}: bad paths give errno names`,
  inTemp(async (dir) => {
    await rejectsWithCode(acquire(""), "EINVAL");
    await rejectsWithCode(acquire(join(dir, "a\0b")), "EINVAL");
    // A directory is a lock path (as for flock(1)), but not one to remove on release.
    await rejectsWithCode(acquire(dir, { removeOnRelease: true }), "EISDIR");
    await rejectsWithCode(acquire(join(dir, "missing", "x.lock")), "ENOENT");
    symlinkSync(join(dir, "target.lock"), join(dir, "link.lock"));
    await rejectsWithCode(acquire(join(dir, "link.lock")), "ELOOP");
    assert.throws(
      () => readFileSync(join(dir, "target.lock")),
      /ENOENT/,
      "symlink target not created",
    );
    await rejectsWithCode(acquire(join(dir, "n".repeat(300))), "ENAMETOOLONG");
    writeFileSync(join(dir, "file"), "");
    await rejectsWithCode(acquire(join(dir, "file", "x.lock")), "ENOTDIR");
    const error = await acquire(join(dir, "missing", "x.lock")).catch((e) => e);
    assert.ok(error.message.includes(join(dir, "missing", "x.lock")));
  }),
);

test(`${runtimeName}: bad options are TypeError or RangeError`, () => {
  // deno-lint-ignore no-explicit-any
  const anyAcquire = tryAcquire as any;
  assert.throws(() => anyAcquire(42), TypeError);
  assert.throws(() => anyAcquire(new URL("http://x/y")), TypeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", "fast"), TypeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", { timeout: -1 }), RangeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", { timeout: NaN }), RangeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", { timeout: "1" }), TypeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", { backend: "magic" }), TypeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", { shared: "yes" }), TypeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", { mode: 0o17777 }), RangeError);
  assert.throws(() => anyAcquire("/tmp/x.lock", { signal: {} }), TypeError);
});

test(
  `${runtimeName}: thousands of cycles and failures leak no descriptor`,
  inTemp(async (dir) => {
    const path = join(dir, "fd.lock");
    mkdirSync(join(dir, "sub"));
    tryAcquire(path)!.releaseSync(); // warm up lazily created runtime descriptors
    const before = openDescriptors();
    for (let i = 0; i < 2000; i++) {
      const lock = tryAcquire(path, { removeOnRelease: i % 3 === 0 })!;
      assert.equal(tryAcquire(path), null);
      lock.releaseSync();
    }
    for (let i = 0; i < 200; i++) {
      (await acquire(path)).releaseSync();
      // Refused after it was opened and locked: the descriptor must still be closed.
      assert.throws(() => tryAcquire(join(dir, "sub"), { removeOnRelease: true }), LockError);
      assert.throws(() => tryAcquire(join(dir, "none", "x")), LockError);
    }
    const holder = tryAcquire(path)!;
    for (let i = 0; i < 20; i++) {
      await assert.rejects(acquire(path, { timeout: 2 }), LockTimeoutError);
    }
    holder.releaseSync();
    assert.equal(openDescriptors(), before);
  }),
);

if (runtimeName !== "deno") {
  const reason = `deno-native is a Deno-only backend; ${runtimeName} cannot use it`;
  console.log(`SKIP ${runtimeName}: the native backend: ${reason}`);
  test(`${runtimeName}: the native backend (FsFile.tryLock)`, { skip: reason }, () => {});
} else {
  test(
    "deno: the native backend (FsFile.tryLock) excludes the FFI backend",
    inTemp((dir) => {
      const path = join(dir, "n.lock");
      const native = tryAcquire(path, { backend: "native" })!;
      assert.equal(native.backend, "deno-native");
      assert.equal(tryAcquire(path, { backend: "ffi" }), null);
      assert.equal(tryAcquire(path, { backend: "native" }), null);
      native.releaseSync();
      const ffi = tryAcquire(path, { backend: "ffi" })!;
      assert.equal(ffi.backend, "deno-ffi");
      assert.equal(tryAcquire(path, { backend: "native" }), null);
      ffi.releaseSync();
    }),
  );
}

test(
  `${runtimeName}: Deno without write permission: a missing lock file is EACCES, not a spin`,
  async () => {
    // Deno refuses the read-write open before looking at the file, and the
    // read-only open then finds nothing: the refusal is the answer.
    const dir = tempDir();
    const child = start([
      bin("deno"),
      "run",
      `--allow-read=${repoRoot},${dir}`,
      join(workers, "try_once.ts"),
      join(dir, "missing.lock"),
    ]);
    const watchdog = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      const result = await finish(child);
      assert.equal(result.signal, null, "it ended by itself");
      assert.equal(result.stdout.trim(), "EACCES");
    } finally {
      clearTimeout(watchdog);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
