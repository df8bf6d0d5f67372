// Self-test of the FUSE fixture (fuse.ts, flockfs.c): each flock mode really produces its
// answer through flock(2), as util-linux flock(1) sees it; the mount mirrors its backing
// directory; and nothing (mount, process, directory) outlives a test, even a failed one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type FlockMode,
  type FuseMount,
  fuseUnavailable,
  inFuseRequest,
  isMounted,
  mountFlockfs,
  processState,
} from "./fuse.ts";
import { bin, hasCommand, runtimeName } from "../helpers.ts";

const reason = fuseUnavailable() ??
  (hasCommand("flock")
    ? undefined
    : "util-linux flock(1) is not on PATH; apt-get install util-linux");
if (reason) console.log(`SKIP fuse: ${reason}`);
const skip = { skip: reason };

const FUSE_SUPER_MAGIC = "65735546";

interface Ended {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Resolves when the child has exited and its pipes are closed. */
function ended(child: ChildProcess): Promise<Ended> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += d));
  child.stderr?.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Rejects if `promise` has not settled after `ms`: a guard against hangs, not a timing. */
function guard<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs argv (no shell) to the end, with a generous hang guard. */
function run(argv: string[]): Promise<Ended> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  return guard(ended(child), 20_000, argv.join(" "));
}

/** flock(1) on a descriptor the shell opened with `redirect` ("<" read-only, ">>" writing). */
function flockFd(file: string, redirect: "<" | ">>"): Promise<Ended> {
  return run(["sh", "-c", `exec flock -n 3 3${redirect}"$1"`, "sh", file]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Processes other than flockfs itself whose command line names `path`. */
function processesNaming(path: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(path)) found.push(+entry);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Running, or stopped, or asleep: not gone and not a zombie waiting for its reaper. */
function alive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== "Z" && state !== "X";
}

/** What must hold once a mount is gone: no mount, no flockfs process, no directory. */
function assertGone(mountpoint: string, pid: number): void {
  assert.ok(!isMounted(mountpoint), `${mountpoint} is still mounted`);
  assert.ok(
    !readFileSync("/proc/mounts", "utf8").includes(mountpoint),
    `${mountpoint} is still in /proc/mounts`,
  );
  assert.ok(!alive(pid), `flockfs (pid ${pid}) is still there`);
  assert.deepEqual(processesNaming(mountpoint), [], "a process still names the mount point");
  assert.ok(!existsSync(dirname(mountpoint)), `${dirname(mountpoint)} was not removed`);
}

/** Mounts flockfs in `mode` for `fn`, unmounts whatever happens, and checks the cleanup. */
async function withMount(mode: FlockMode, fn: (mount: FuseMount) => Promise<void> | void) {
  const mount = await mountFlockfs(mode);
  try {
    assert.ok(isMounted(mount.mountpoint));
    await fn(mount);
  } finally {
    await guard(mount.unmount(), 30_000, "unmount");
  }
  await mount.unmount(); // idempotent
  assertGone(mount.mountpoint, mount.pid);
}

/** A file created through the mount, checked to be in the backing directory. */
function lockFile(mount: FuseMount, name = "f.lock"): string {
  const file = join(mount.mountpoint, name);
  writeFileSync(file, "through the mount");
  assert.equal(readFileSync(join(mount.backing, name), "utf8"), "through the mount");
  return file;
}

test(
  `${runtimeName}: fuse: enolck: flock(2) on the mount fails with ENOLCK`,
  skip,
  () =>
    withMount("enolck", async (mount) => {
      const file = lockFile(mount);
      const byPath = await run(["flock", "-n", file, "true"]);
      assert.notEqual(byPath.code, 0);
      assert.notEqual(byPath.code, 1, "1 would mean 'held by someone else'");
      assert.match(byPath.stderr, /No locks available/);
      for (const redirect of ["<", ">>"] as const) {
        const byFd = await flockFd(file, redirect);
        assert.match(byFd.stderr, /flock: 3: No locks available/, `opened with ${redirect}`);
      }
    }),
);

test(
  `${runtimeName}: fuse: eopnotsupp: flock(2) on the mount fails with EOPNOTSUPP`,
  skip,
  () =>
    withMount("eopnotsupp", async (mount) => {
      const file = lockFile(mount);
      const byPath = await run(["flock", "-n", file, "true"]);
      assert.notEqual(byPath.code, 0);
      assert.notEqual(byPath.code, 1);
      assert.match(byPath.stderr, /Operation not supported/);
      for (const redirect of ["<", ">>"] as const) {
        const byFd = await flockFd(file, redirect);
        assert.match(byFd.stderr, /flock: 3: Operation not supported/, `opened with ${redirect}`);
      }
    }),
);

test(
  `${runtimeName}: fuse: ebadf-readonly: flock(2) fails with EBADF on a read-only descriptor only`,
  skip,
  () =>
    withMount("ebadf-readonly", async (mount) => {
      const file = lockFile(mount);
      const readOnly = await flockFd(file, "<");
      assert.notEqual(readOnly.code, 0);
      assert.match(readOnly.stderr, /flock: 3: Bad file descriptor/);
      const writing = await flockFd(file, ">>");
      assert.equal(writing.code, 0, writing.stderr);
      // Given a path, flock(1) opens it read-only, gets EBADF and reopens it read-write (its
      // NFS workaround): it succeeds, as it does on NFS.
      const byPath = await run(["flock", "-n", file, "true"]);
      assert.equal(byPath.code, 0, byPath.stderr);
    }),
);

/** flock(1) holding `file` until its stdin closes. */
async function holder(file: string): Promise<{ release(): Promise<void> }> {
  const child = spawn("flock", ["-n", file, "sh", "-c", "echo held; exec cat"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const end = ended(child);
  await guard(
    new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => (out += d) && out.includes("held") && resolve());
      end.then((e) => reject(new Error(`holder exited ${e.code}: ${e.stderr}`)));
    }),
    20_000,
    "holder",
  );
  return {
    release: async () => {
      child.stdin!.end();
      const e = await guard(end, 20_000, "holder release");
      assert.equal(e.code, 0, e.stderr);
    },
  };
}

test(
  `${runtimeName}: fuse: passthrough: flock(2) excludes as on a local filesystem, backing file included`,
  skip,
  () =>
    withMount("passthrough", async (mount) => {
      const file = lockFile(mount);
      const backingFile = join(mount.backing, "f.lock");
      assert.equal((await run(["flock", "-n", file, "true"])).code, 0);

      const held = await holder(file);
      assert.equal((await run(["flock", "-n", file, "true"])).code, 1, "busy through the mount");
      // A blocked flock(2) is interrupted by flock -w's alarm: the timeout works.
      assert.equal((await run(["flock", "-w", "0.3", file, "true"])).code, 1, "flock -w times out");
      assert.equal((await run(["flock", "-n", backingFile, "true"])).code, 1, "busy on backing");
      await held.release();
      assert.equal((await run(["flock", "-n", file, "true"])).code, 0, "free once released");

      // The control that shows flock(2) reaches flockfs: a lock taken on the backing file,
      // which the kernel's local emulation of flock on the mount could not see.
      const heldBelow = await holder(backingFile);
      assert.equal((await run(["flock", "-n", file, "true"])).code, 1, "backing lock seen");
      await heldBelow.release();
      assert.equal((await run(["flock", "-n", file, "true"])).code, 0);
    }),
);

test(
  `${runtimeName}: fuse: control: without FUSE_CAP_FLOCK_LOCKS the kernel takes flock locks itself`,
  skip,
  async () => {
    // enolck, but flockfs declines the capability: flock(2) succeeds, never reaching it...
    const mount = await mountFlockfs("enolck", { localFlock: true });
    try {
      const file = lockFile(mount);
      const result = await run(["flock", "-n", file, "true"]);
      assert.equal(result.code, 0, result.stderr);
      // ...and a lock on the backing file goes unseen through the mount.
      const heldBelow = await holder(join(mount.backing, "f.lock"));
      assert.equal((await run(["flock", "-n", file, "true"])).code, 0, "backing lock unseen");
      await heldBelow.release();
    } finally {
      await mount.unmount();
    }
    assertGone(mount.mountpoint, mount.pid);
  },
);

test(
  `${runtimeName}: fuse: hang: flock(2) never answers, even SIGKILL waits, until the abort; the rest answers`,
  skip,
  () =>
    withMount("hang", async (mount) => {
      const file = lockFile(mount);
      // flock -w 1 arms an alarm for 1 s; the request it sent is never answered.
      const child = spawn("flock", ["-w", "1", file, "true"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      const end = ended(child);
      let finished = false;
      end.then(() => (finished = true), () => (finished = true));
      await guard(
        (async () => {
          while (!inFuseRequest(child.pid!) && !finished) await sleep(10);
        })(),
        20_000,
        "flock reaching flockfs",
      );
      assert.ok(!finished, "flock ended instead of waiting");

      // Meanwhile other operations answer, on the same file included.
      const other = join(mount.mountpoint, "other");
      await guard(
        (async () => {
          assert.ok((await stat(file)).isFile());
          await writeFile(other, "ok");
          assert.equal(await readFile(other, "utf8"), "ok");
          await mkdir(join(mount.mountpoint, "dir"));
          assert.deepEqual((await readdir(mount.mountpoint)).sort(), ["dir", "f.lock", "other"]);
          await rename(other, join(mount.mountpoint, "dir", "moved"));
          await unlink(file);
        })(),
        20_000,
        "operations beside the hung flock",
      );

      // Its 1 s alarm interrupts the wait; from then on it waits uninterruptibly (D), and
      // well past its timeout it still does.
      await guard(
        (async () => {
          while (processState(child.pid!) !== "D" && !finished) await sleep(20);
        })(),
        20_000,
        "flock in uninterruptible sleep",
      );
      await sleep(1_000);
      assert.ok(!finished, "flock -w 1 returned although flock(2) never answered");
      assert.equal(processState(child.pid!), "D");
      // ...and not even SIGKILL ends it while the request is unanswered.
      process.kill(child.pid!, "SIGKILL");
      await sleep(500);
      assert.ok(!finished, "SIGKILL ended a process waiting on an unanswered FUSE request");
      assert.equal(processState(child.pid!), "D");

      // Unmounting aborts the connection first: the request fails, and SIGKILL takes it.
      await guard(mount.unmount(), 30_000, "unmount with a hung flock");
      const result = await guard(end, 20_000, "flock after the abort");
      assert.equal(result.signal, "SIGKILL");
    }),
);

test(
  `${runtimeName}: fuse: abort() fails a hung flock with ECONNABORTED; the mount stays until unmount`,
  skip,
  () =>
    withMount("hang", async (mount) => {
      const file = lockFile(mount);
      const child = spawn("flock", ["-n", file, "true"], { stdio: ["ignore", "pipe", "pipe"] });
      const end = ended(child);
      await guard(
        (async () => {
          while (!inFuseRequest(child.pid!)) await sleep(10);
        })(),
        20_000,
        "flock reaching flockfs",
      );
      mount.abort();
      const result = await guard(end, 20_000, "flock after abort()");
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /Software caused connection abort/);
      assert.ok(isMounted(mount.mountpoint), "abort() does not unmount");
    }),
);

test(
  `${runtimeName}: fuse: statfs reports FUSE, with the backing filesystem's numbers`,
  skip,
  () =>
    withMount("passthrough", async (mount) => {
      const type = await run(["stat", "-f", "-c", "%t", mount.mountpoint]);
      assert.equal(type.stdout.trim(), FUSE_SUPER_MAGIC);
      const numbers = async (path: string) =>
        (await run(["stat", "-f", "-c", "%b %S %l", path])).stdout.trim();
      assert.equal(await numbers(mount.mountpoint), await numbers(mount.backing));
      assert.notEqual(
        (await run(["stat", "-f", "-c", "%t", mount.backing])).stdout.trim(),
        FUSE_SUPER_MAGIC,
      );
    }),
);

test(
  `${runtimeName}: fuse: passthrough: file operations reach the backing directory`,
  skip,
  () =>
    withMount("passthrough", (mount) => {
      const m = (name: string) => join(mount.mountpoint, name);
      const b = (name: string) => join(mount.backing, name);
      writeFileSync(m("a"), "hello");
      assert.equal(readFileSync(b("a"), "utf8"), "hello");
      writeFileSync(b("b"), "from below");
      assert.equal(readFileSync(m("b"), "utf8"), "from below");
      assert.equal(statSync(m("a")).ino, statSync(b("a")).ino, "inode numbers pass through");

      const fd = openSync(m("a"), "r+");
      writeSync(fd, "J");
      fsyncSync(fd);
      closeSync(fd);
      assert.equal(readFileSync(b("a"), "utf8"), "Jello");
      truncateSync(m("a"), 2);
      assert.equal(readFileSync(b("a"), "utf8"), "Je");
      chmodSync(m("a"), 0o600);
      assert.equal(statSync(b("a")).mode & 0o777, 0o600);
      utimesSync(m("a"), 1_000_000, 2_000_000);
      assert.equal(statSync(b("a")).mtimeMs, 2_000_000_000);

      mkdirSync(m("d"));
      renameSync(m("a"), m("d/a2"));
      assert.ok(existsSync(b("d/a2")) && !existsSync(b("a")));
      symlinkSync("d/a2", m("link"));
      assert.equal(readlinkSync(b("link")), "d/a2");
      assert.equal(readlinkSync(m("link")), "d/a2");
      assert.ok(lstatSync(m("link")).isSymbolicLink());
      assert.deepEqual(readdirSync(m(".")).sort(), ["b", "d", "link"]);

      // A lock file unlinked while open stays usable through its descriptor (no hidden files).
      const open = openSync(m("b"), "r+");
      unlinkSync(m("b"));
      assert.ok(!existsSync(b("b")));
      writeSync(open, "!");
      assert.equal(fstatSync(open).size, "from below".length);
      closeSync(open);
      assert.deepEqual(readdirSync(b(".")).sort(), ["d", "link"]);

      unlinkSync(m("link"));
      unlinkSync(m("d/a2"));
      rmdirSync(m("d"));
      assert.deepEqual(readdirSync(b(".")), []);
    }),
);

/** The command that runs a TypeScript file in the runtime running this test. */
function runtimeCommand(script: string, args: string[]): string[] {
  switch (runtimeName) {
    case "deno":
      return [bin("deno"), "run", "-A", script, ...args];
    case "bun":
      return [bin("bun"), script, ...args];
    default:
      return ["node", "--import", "tsx", script, ...args];
  }
}

for (const end of ["exit", "wait"] as const) {
  const how = end === "exit"
    ? "exits without unmounting (the exit hook cleans up)"
    : "is killed with SIGKILL (flockfs cleans up after itself)";
  test(
    `${runtimeName}: fuse: a test process that ${how} leaves nothing behind, a hung flock included`,
    skip,
    async () => {
      const worker = fileURLToPath(new URL("mount_worker.ts", import.meta.url));
      const argv = runtimeCommand(worker, ["hang", end]);
      const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
      const result = ended(child);
      let line = "";
      await guard(
        new Promise<void>((resolve, reject) => {
          child.stdout!.on("data", (d) => (line += d).includes("\n") && resolve());
          result.then((e) => reject(new Error(`worker exited ${e.code}: ${e.stderr}`)));
        }),
        60_000,
        "worker mount",
      );
      const { mountpoint, pid, stuck } = JSON.parse(line) as {
        mountpoint: string;
        pid: number;
        stuck: number;
      };
      assert.ok(inFuseRequest(stuck), "the worker's flock is stuck in flockfs");
      if (end === "wait") process.kill(child.pid!, "SIGKILL");
      const e = await guard(result, 30_000, "worker end");
      if (end === "exit") assert.equal(e.code, 0, e.stderr);
      // The cleanup runs as the worker dies; allow it a moment to finish.
      await guard(
        (async () => {
          while (
            isMounted(mountpoint) || alive(pid) || alive(stuck) || existsSync(dirname(mountpoint))
          ) await sleep(20);
        })(),
        20_000,
        "cleanup after the worker",
      );
      assertGone(mountpoint, pid);
      assert.ok(!alive(stuck), "the stuck flock ended with the connection");
    },
  );
}
