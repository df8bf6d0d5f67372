// Lock paths and options that were found to mislead (issue 13): a `..` after
// a symlinked directory, undecodable file: URLs, mode bits beyond permissions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { acquire, LockError, tryAcquire } from "../mod.ts";
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
