// The Windows suite: runs in Node for Windows (under Wine on Linux CI) against
// the module bundled for Node (filelock.mjs, next to this file). Prints one
// line per test: "ok - name", "not ok - name: why" or "skip - name: why".
// Child roles: `suite.mjs hold <lock> <dir>`, `suite.mjs count <lock> <counter> <n> lock|nolock [remove]`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { acquire, acquireSync, LockError, probe, tryAcquire } from "./filelock.mjs";

const self = fileURLToPath(import.meta.url);
const pause = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms) => Atomics.wait(pause, 0, 0, ms);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForFile(path, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`no ${path} in time`);
    await sleep(10);
  }
}

// ---- child roles ----------------------------------------------------------

const [role, ...args] = process.argv.slice(2);
if (role === "hold") {
  const [lock, dir] = args;
  const held = acquireSync(lock);
  writeFileSync(join(dir, "held"), String(process.pid));
  while (!existsSync(join(dir, "release"))) sleepSync(10);
  held.releaseSync();
  writeFileSync(join(dir, "released"), "");
  process.exit(0);
}
if (role === "exit") process.exit(0);
if (role === "count") {
  const [lock, counter, n, mode, remove] = args;
  const go = join(counter + ".go");
  while (!existsSync(go)) sleepSync(2);
  for (let i = 0; i < Number(n); i++) {
    const held = mode === "lock"
      ? acquireSync(lock, { removeOnRelease: remove === "remove" })
      : null;
    const value = Number(readFileSync(counter, "utf8") || "0");
    sleepSync(2); // widen the read-modify-write window
    writeFileSync(counter, String(value + 1));
    held?.releaseSync();
  }
  process.exit(0);
}

// ---- the suite ------------------------------------------------------------

const root = mkdtempSync(join(tmpdir(), "filelock-win-"));
let failures = 0;
const results = [];

async function check(name, fn) {
  const dir = mkdtempSync(join(root, "t-"));
  try {
    await fn(dir);
    results.push(`ok - ${name}`);
  } catch (error) {
    failures++;
    results.push(`not ok - ${name}: ${String(error?.stack ?? error).replaceAll("\n", " | ")}`);
  }
  console.log(results.at(-1));
}

function child(argv) {
  const proc = spawn(process.execPath, [self, ...argv], { stdio: "ignore" });
  const done = new Promise((resolve, reject) => {
    proc.on("error", reject);
    proc.on("exit", (code) => resolve(code));
  });
  return { proc, done };
}

const isCode = (code) => (e) => e instanceof LockError && e.code === code;

await check("probe reports windows and node-koffi", () => {
  const result = probe();
  assert.equal(result.runtime, "node");
  assert.equal(result.os, "windows");
  assert.equal(result.backend, "node-koffi");
  assert.equal(result.degraded, false);
  assert.match(result.reason, /LockFileEx/);
});

await check("probe(path) names the volume's filesystem, local", (dir) => {
  const result = probe(join(dir, "fs.lock"));
  // Wine answers for its drives as Windows does for a local disk (GetVolumeInformationW).
  assert.match(result.fsType, /^[a-z0-9]+$/);
  assert.notEqual(result.fsType, "unknown");
  assert.equal(result.network, false, "GetDriveTypeW: not DRIVE_REMOTE");
});

await check(
  "a second process is refused while one holds, and succeeds after release",
  async (dir) => {
    const lock = join(dir, "a.lock");
    const holder = child(["hold", lock, dir]);
    await waitForFile(join(dir, "held"));
    assert.equal(tryAcquire(lock), null, "refused while held");
    await assert.rejects(acquire(lock, { timeout: 100 }), isCode("ETIMEDOUT"));
    writeFileSync(join(dir, "release"), "");
    await waitForFile(join(dir, "released"));
    const next = await acquire(lock, { timeout: 10_000 });
    assert.equal(next.backend, "node-koffi");
    next.releaseSync();
    assert.equal(await holder.done, 0);
  },
);

await check("two locks in one process exclude each other; the content stays readable", (dir) => {
  const lock = join(dir, "b.lock");
  writeFileSync(lock, "content others may read");
  const first = tryAcquire(lock);
  assert.ok(first);
  assert.equal(tryAcquire(lock), null);
  // The locked byte lies far past the content: reading and writing are not blocked.
  assert.equal(readFileSync(lock, "utf8"), "content others may read");
  writeFileSync(lock, "rewritten while locked");
  first.releaseSync();
  const second = tryAcquire(lock);
  assert.ok(second);
  second.releaseSync();
});

await check("shared locks coexist and exclude an exclusive one", (dir) => {
  const lock = join(dir, "s.lock");
  const a = tryAcquire(lock, { shared: true });
  const b = tryAcquire(lock, { shared: true });
  assert.ok(a && b, "two shared");
  assert.equal(tryAcquire(lock), null, "exclusive refused while shared are held");
  a.releaseSync();
  assert.equal(tryAcquire(lock), null, "still one shared");
  b.releaseSync();
  const x = tryAcquire(lock);
  assert.ok(x);
  assert.equal(tryAcquire(lock, { shared: true }), null, "shared refused while exclusive is held");
  x.releaseSync();
});

async function counter(dir, mode, n) {
  const lock = join(dir, "c.lock");
  const count = join(dir, "counter");
  writeFileSync(count, "0");
  // One of the three removes the lock file on release: identity must hold across deletes.
  const children = [
    child(["count", lock, count, String(n), mode]),
    child(["count", lock, count, String(n), mode, "remove"]),
    child(["count", lock, count, String(n), mode]),
  ];
  await sleep(1500); // let all three start before they go
  writeFileSync(count + ".go", "");
  const codes = await Promise.all(children.map((c) => c.done));
  assert.deepEqual(codes, [0, 0, 0]);
  return Number(readFileSync(count, "utf8"));
}

await check(
  "three processes increment a counter exactly (one with removeOnRelease)",
  async (dir) => {
    assert.equal(await counter(dir, "lock", 30), 90);
  },
);

await check("control: the same counter without the lock loses updates", async (dir) => {
  const total = await counter(dir, "nolock", 30);
  assert.notEqual(total, 90, `expected lost updates, got ${total}`);
});

await check("the lock is on the file at the path, also after a delete", async (dir) => {
  const lock = join(dir, "d.lock");
  const first = tryAcquire(lock, { removeOnRelease: true });
  assert.ok(first);
  // Someone deletes the held file (allowed: lock files are opened with FILE_SHARE_DELETE).
  unlinkSync(lock);
  first.releaseSync();
  const second = await acquire(lock, { timeout: 10_000 });
  assert.ok(existsSync(lock), "the new holder's file is at the path");
  assert.equal(tryAcquire(lock), null, "and it is the locked one");
  second.releaseSync();
  // removeOnRelease removes it.
  const third = tryAcquire(lock, { removeOnRelease: true });
  assert.ok(third);
  third.releaseSync();
  assert.ok(!existsSync(lock), "removed on release");
});

await check("bad paths: missing directory, directory, empty, NUL", (dir) => {
  assert.throws(() => tryAcquire(join(dir, "missing", "x.lock")), isCode("ENOENT"));
  mkdirSync(join(dir, "folder.lock"));
  assert.throws(() => tryAcquire(join(dir, "folder.lock")), isCode("EISDIR"));
  assert.throws(() => tryAcquire(""), isCode("EINVAL"));
  assert.throws(() => tryAcquire(join(dir, "a\0b")), isCode("EINVAL"));
  try {
    tryAcquire(join(dir, "missing", "x.lock"));
  } catch (error) {
    assert.equal(typeof error.cause, "number", "the Windows error number is the cause");
  }
});

await check("long paths and non-ASCII names", (dir) => {
  const deep = join(dir, "d".repeat(100), "e".repeat(100), "f".repeat(100));
  mkdirSync(deep, { recursive: true });
  for (const name of ["lås-ファイル-✓.lock", `${"g".repeat(60)}.lock`]) {
    const path = join(deep, name);
    assert.ok(path.length > 260, "beyond MAX_PATH");
    const lock = tryAcquire(path);
    assert.ok(lock, name);
    assert.equal(tryAcquire(path), null);
    lock.releaseSync();
    assert.ok(statSync(path).isFile(), "created under its own name");
  }
});

await check("pidfile: records carry the creation time; a reused PID is reclaimed", async (dir) => {
  const lock = join(dir, "p.lock");
  const held = tryAcquire(lock, { backend: "pidfile" });
  assert.ok(held);
  const record = JSON.parse(readFileSync(lock, "utf8"));
  assert.equal(record.pid, process.pid);
  assert.match(record.startToken, /^win:\d+$/, JSON.stringify(record));
  assert.equal(tryAcquire(lock, { backend: "pidfile" }), null, "a live holder is left alone");
  held.releaseSync();
  // Our own PID, but another creation time: the PID was reused, the holder is gone.
  writeFileSync(lock, JSON.stringify({ ...record, startToken: "win:1", token: "f".repeat(32) }));
  const reclaimed = tryAcquire(lock, { backend: "pidfile" });
  assert.ok(reclaimed, "reclaimed");
  reclaimed.releaseSync();
  // A process that has exited.
  const gone = child(["exit"]);
  await gone.done;
  writeFileSync(lock, JSON.stringify({ ...record, pid: gone.proc.pid, token: "e".repeat(32) }));
  const again = tryAcquire(lock, { backend: "pidfile" });
  assert.ok(again, "a dead holder's record is reclaimed");
  again.releaseSync();
  assert.ok(!existsSync(lock));
});

rmSync(root, { recursive: true, force: true });
console.log(`# windows: ${results.length - failures} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
