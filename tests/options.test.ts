// Lock paths and options that were found to mislead (issue 13): a `..` after
// a symlinked directory, undecodable file: URLs, mode bits beyond permissions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { acquire, LockError, tryAcquire } from "../mod.ts";
import { type PostgresClient, postgresLocks } from "../src/postgres/mod.ts";
import { exited, hasCommand, inTemp, runtimeName, waitFor } from "./helpers.ts";

const FLOCK = hasCommand("flock");
const flockSkip = FLOCK ? undefined : "util-linux flock(1) is not on PATH";

test(
  `${runtimeName}: options: '..' after a symlinked directory names the file the kernel names`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    mkdirSync(join(dir, "real", "inner"), { recursive: true });
    symlinkSync(join(dir, "real", "inner"), join(dir, "app"));
    const path = join(dir, "app") + "/../x.lock"; // the kernel: real/x.lock
    const holder = spawn("flock", [path, "sh", "-c", "echo held; exec sleep 60"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    try {
      await waitFor(holder, "held");
      assert.equal(tryAcquire(path), null, "flock(1) holds the very file this path names");
      // Control: the lexical reading of the same path is another file, free.
      const lexical = tryAcquire(join(dir, "x.lock"));
      assert.ok(lexical, "dir/x.lock is not what the kernel locks");
      lexical.releaseSync();
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
      await exited(holder);
    }
    // flock(1)'s command may take a moment longer to die than flock(1) itself.
    const lock = await acquire(path, { timeout: 10_000 });
    assert.equal(
      statSync(lock.path).ino,
      statSync(join(dir, "real", "x.lock")).ino,
      `${lock.path} is real/x.lock`,
    );
    lock.releaseSync();
  }),
);

test(`${runtimeName}: options: a file: URL that does not decode to a path is EINVAL`, () => {
  for (const url of ["file:///tmp/%FF.lock", "file:///tmp/%C3%28.lock"]) {
    assert.throws(
      () => tryAcquire(new URL(url)),
      (e: unknown) => e instanceof LockError && e.code === "EINVAL" && e.message.includes(url),
      url,
    );
  }
});

test(
  `${runtimeName}: options: mode is permission bits only: no setuid, setgid or sticky file`,
  inTemp((dir) => {
    for (const mode of [0o4755, 0o2755, 0o1644, 0o7777]) {
      assert.throws(
        () => tryAcquire(join(dir, "never-created.lock"), { mode }),
        (e: unknown) => e instanceof RangeError && /permission bits/.test(e.message),
        mode.toString(8),
      );
    }
  }),
);

test(
  `${runtimeName}: options: allowForeignOwner must be a boolean`,
  inTemp((dir) => {
    assert.throws(
      () => tryAcquire(join(dir, "a.lock"), { allowForeignOwner: "yes" as unknown as boolean }),
      TypeError,
    );
  }),
);

test(
  `${runtimeName}: options: shared, timeout and signal are refused alike by the file API and postgres`,
  inTemp(async (dir) => {
    // Validation comes before any statement: a client that is never called is enough.
    const unused = (): never => assert.fail("the client must not be called");
    const locks = postgresLocks({ begin: unused, unsafe: unused } as PostgresClient);
    const path = join(dir, "never-created.lock");
    const bad: [unknown, ErrorConstructor, RegExp][] = [
      ["yes", TypeError, /^options must be an object, got string$/],
      [42, TypeError, /^options must be an object, got number$/],
      [{ shared: "yes" }, TypeError, /^options\.shared must be a boolean$/],
      [{ timeout: "1" }, TypeError, /^options\.timeout must be a number$/],
      [{ timeout: NaN }, RangeError, /^options\.timeout must be >= 0 or Infinity, got NaN$/],
      [{ timeout: -1 }, RangeError, /^options\.timeout must be >= 0 or Infinity, got -1$/],
      [{ signal: {} }, TypeError, /^options\.signal must be an AbortSignal$/],
      [{ signal: null }, TypeError, /^options\.signal must be an AbortSignal$/],
    ];
    for (const [options, kind, message] of bad) {
      const what = JSON.stringify(options);
      const refused = (e: unknown): boolean =>
        e instanceof kind && e.constructor === kind && message.test(e.message);
      assert.throws(() => tryAcquire(path, options as object), refused, `file: ${what}`);
      await assert.rejects(locks.acquire("name", options as object), refused, `postgres: ${what}`);
      await assert.rejects(locks.tryAcquire("name", options as object), refused, what);
    }
    assert.equal(existsSync(path), false, "nothing was created");
    // Control: valid values of the same options pass validation in both.
    const good = { shared: true, timeout: 0, signal: new AbortController().signal };
    const lock = tryAcquire(path, good);
    assert.ok(lock);
    lock.releaseSync();
    await assert.rejects(locks.tryAcquire("name", good), /the client must not be called/);
  }),
);
