// What the module knows of the filesystem a lock file is on, and what it does on one that
// misbehaves, on a real FUSE filesystem (flockfs): probe(path), inspect(path) and the
// CLI's --probe/--status name it; a flock that never answers is bounded by the caller's
// timeout and never blocks the event loop; flock refused on a read-only descriptor is
// explained.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
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
import {
  bin,
  cliArgv,
  command,
  finish,
  inTemp,
  repoRoot,
  runtimeName,
  start,
  waitFor,
  workers,
} from "../helpers.ts";
import { fuseUnavailable, inFuseRequest, withFlockfs } from "./fuse.ts";

const reason = fuseUnavailable();
if (reason) console.log(`SKIP fuse filesystems: ${reason}`);
const skip = { skip: reason };

/** What `stat -f` calls the filesystem of `dir`'s magic number, in our names. */
function localName(dir: string): string | undefined {
  const magic = spawnSync("stat", ["-f", "-c", "%t", dir], { encoding: "utf8" }).stdout.trim();
  const names: Record<string, string> = {
    ef53: "ext4",
    "1021994": "tmpfs",
    "794c7630": "overlay",
    "58465342": "xfs",
    "9123683e": "btrfs",
  };
  return names[magic];
}

test(
  `${runtimeName}: filesystems: probe(path) and inspect(path) name a local filesystem`,
  inTemp((dir) => {
    const path = join(dir, "local.lock");
    const probed = probe(path);
    assert.equal(probed.path, path);
    assert.equal(probed.network, false);
    assert.notEqual(probed.fsType, "unknown");
    const expected = localName(dir);
    if (expected !== undefined) assert.equal(probed.fsType, expected);
    assert.equal(probed.backend, probe().backend, "the path changes nothing here");
    const status = inspect(path);
    assert.equal(status.fsType, probed.fsType);
    assert.equal(status.network, false);
  }),
);

test(
  `${runtimeName}: fuse: probe(path), inspect(path), --probe <path> and --status name FUSE`,
  skip,
  () =>
    withFlockfs("passthrough", async (mount) => {
      const path = join(mount.mountpoint, "f.lock");
      const probed = probe(path);
      assert.equal(probed.fsType, "fuse");
      assert.equal(probed.network, false);
      assert.match(probed.reason, /fuse.*first lock there is taken on a thread of its own/);
      assert.equal(inspect(path).fsType, "fuse");
      // Control: the directory it mirrors is not FUSE.
      assert.notEqual(probe(join(mount.backing, "f.lock")).fsType, "fuse");
      // A lock taken there is a kernel lock, as anywhere with flock.
      const lock = tryAcquire(path);
      assert.ok(lock !== null && lock.backend === probe().backend);
      lock.releaseSync();

      const probedByCli = await finish(start(cliArgv(["--probe", path])));
      assert.equal(probedByCli.code, 0, probedByCli.stderr);
      const json = JSON.parse(probedByCli.stdout);
      assert.equal(json.fsType, "fuse");
      assert.equal(json.network, false);
      const status = await finish(start(cliArgv(["--status", path])));
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /^free: .*\nfilesystem: fuse\n$/);
    }),
);

test(
  `${runtimeName}: fuse: a flock that never answers is bounded by the timeout, and the event loop runs meanwhile`,
  skip,
  () =>
    withFlockfs("hang", async (mount) => {
      const path = join(mount.mountpoint, "hung.lock");
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      try {
        await assert.rejects(
          acquire(path, { timeout: 300 }),
          (e) =>
            e instanceof LockError && !(e instanceof LockTimeoutError) && e.code === "EIO" &&
            /did not answer flock\(2\).*thread of this process stays blocked/.test(e.message),
        );
      } finally {
        clearInterval(ticker);
      }
      assert.ok(ticks > 5, `the event loop ran while the filesystem hung (${ticks} ticks)`);
      // Known hung: the same directory fails at once, with no new thread.
      assert.throws(() => tryAcquire(path), (e) => e instanceof LockError && e.code === "EIO");
      assert.throws(
        () => acquireSync(path, { timeout: 300 }),
        (e) => e instanceof LockError && e.code === "EIO",
      );
      // A directory not asked yet: tryAcquire and acquireSync give it a bounded time of their own.
      mkdirSync(join(mount.mountpoint, "sync"));
      assert.throws(
        () => acquireSync(join(mount.mountpoint, "sync", "x.lock"), { timeout: 300 }),
        (e) => e instanceof LockError && e.code === "EIO",
      );
      mkdirSync(join(mount.mountpoint, "try"));
      assert.throws(
        () => tryAcquire(join(mount.mountpoint, "try", "x.lock")),
        (e) => e instanceof LockError && e.code === "EIO",
      );
      // An abort ends the wait for the filesystem at once.
      mkdirSync(join(mount.mountpoint, "abort"));
      const controller = new AbortController();
      const reason = new Error("given up");
      setTimeout(() => controller.abort(reason), 50);
      await assert.rejects(
        acquire(join(mount.mountpoint, "abort", "x.lock"), { signal: controller.signal }),
        (e) => e === reason,
      );
      // The connection aborted, the stuck threads answer: the filesystem's errors come back.
      mount.abort();
      const deadline = performance.now() + 20_000;
      let error: unknown;
      for (;;) {
        try {
          tryAcquire(path);
        } catch (e) {
          error = e;
        }
        if (error instanceof LockError && error.code !== "EIO") break;
        assert.ok(performance.now() < deadline, `still ${error}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        error = undefined;
      }
      assert.match((error as LockError).code, /^(ENOTCONN|ECONNABORTED)$/);
    }),
);

test(
  `${runtimeName}: fuse: Deno without FFI (its own FsFile lock) is bounded on a hung filesystem too`,
  skip,
  () =>
    withFlockfs("hang", async (mount) => {
      // --allow-sys=statfs: without FFI, how Deno can tell the filesystem.
      const [deno, run, ...rest] = command("deno-native", "try_once.ts", [
        join(mount.mountpoint, "native.lock"),
        "wait=300",
      ]);
      const child = start([deno!, run!, "--allow-sys=statfs", ...rest]);
      const result = finish(child);
      try {
        await waitFor(child, "EIO", 30_000);
      } finally {
        mount.abort(); // its thread leaves the kernel: the process can end
      }
      const ended = await result;
      assert.equal(ended.stdout.trim(), "EIO", ended.stderr);
    }),
);

test(
  `${runtimeName}: fuse: control: on a live FUSE filesystem the first lock is taken within a zero timeout`,
  skip,
  () =>
    withFlockfs("passthrough", async (mount) => {
      const lock = await acquire(join(mount.mountpoint, "live.lock"), { timeout: 0 });
      assert.equal(lock.backend, probe().backend);
      await lock.release();
    }),
);

test(
  `${runtimeName}: fuse: filelock -w on a hung filesystem reports it instead of sleeping in the kernel`,
  skip,
  () =>
    withFlockfs("hang", async (mount) => {
      const path = join(mount.mountpoint, "cli.lock");
      const child = start(cliArgv(["-w", "0.3", path, "echo", "ran"]));
      const result = finish(child);
      try {
        // The error is reported within the timeout's reach; the process itself can only
        // end once its thread leaves the kernel (the connection is aborted below).
        await new Promise<void>((resolve, reject) => {
          let said = "";
          const timer = setTimeout(() => reject(new Error(`no report in time: ${said}`)), 30_000);
          child.stderr!.on("data", (d) => {
            said += d;
            if (said.includes("did not answer flock(2)")) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        assert.ok(inFuseRequest(child.pid!) || child.exitCode === null);
      } finally {
        mount.abort();
      }
      const ended = await result;
      assert.equal(ended.code, 66, ended.stderr);
      assert.equal(ended.stdout, "", "the command never ran");
    }),
);

test(
  `${runtimeName}: fuse: flock refused on a read-only descriptor says that write access is needed`,
  skip,
  () =>
    withFlockfs("ebadf-readonly", async (mount) => {
      const lock = join(mount.mountpoint, "ro.lock");
      writeFileSync(lock, "");
      const script = join(workers, "try_once.ts");
      // Deno without write permission opens read-only, as a user who may not write the file does.
      const readOnly = await finish(start([
        bin("deno"),
        "run",
        `--allow-read=${repoRoot},${mount.mountpoint}`,
        script,
        lock,
        "message",
      ]));
      assert.match(readOnly.stdout, /^EBADF .*need write access.*make the lock file writable/);
      // Control: opened read-write, the same file locks.
      const readWrite = await finish(start([bin("deno"), "run", "-A", script, lock]));
      assert.equal(readWrite.stdout.trim(), "deno-ffi", readWrite.stderr);
    }),
);
