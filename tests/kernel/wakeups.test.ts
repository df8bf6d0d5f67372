// Waiters woken by the kernel (Linux: inotify on the lock file): a woken waiter never
// holds the lock alongside another; a release wakes a waiter; a lost wake-up (a holder
// that unlocks without closing, flock(1)'s read-only descriptor) is still handed over by
// the fallback poll; cancelled waiters leave no descriptor, listener or thread behind; a
// process whose waiters were abandoned exits by itself.
import { test } from "node:test";
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import {
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { acquire, acquireSync, LockTimeoutError, probe } from "../../mod.ts";
import { IDLE_CLOSE_MS } from "../../src/kernel/inotify.ts";
import { asyncWakeupsAvailable } from "../../src/kernel/wakeups.ts";
import { waitTestHooks } from "../../src/wait.ts";
import {
  command,
  exited,
  finish,
  type Flavour,
  hasCommand,
  inTemp,
  openDescriptors,
  runtimeName,
  start,
  waitFor,
} from "../helpers.ts";

const reason = probe().os !== "linux"
  ? "kernel wake-ups exist on Linux only (elsewhere waiters poll)"
  : !hasCommand("python3") || !hasCommand("flock")
  ? "python3 and util-linux flock(1) are the foreign holders: apt-get install python3 util-linux"
  : undefined;
if (reason) console.log(`SKIP kernel wake-ups: ${reason}`);
const skip = { skip: reason };

/** The kernel backends' processes (Deno with FFI: the native backend has no inotify). */
const WOKEN: Flavour[] = ["deno-ffi", "bun", "node"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * flock(1) holding `lock` until stopped, in a process group of its own: stopping it ends the
 * shell's `sleep` too, which would otherwise keep the pipes (and this test) waiting a minute.
 */
async function flockHolder(lock: string): Promise<() => Promise<void>> {
  const holder = spawn("flock", [lock, "sh", "-c", "echo held; exec sleep 60"], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  await waitFor(holder, "held");
  return async () => {
    process.kill(-holder.pid!, "SIGKILL");
    await exited(holder);
  };
}

/**
 * A python3 holder that takes the lock, says "held", and once `release` exists unlocks,
 * keeps the file open for `keepOpen` seconds, creates `<release>.closing`, and closes it.
 */
function pythonHolder(lock: string, release: string, keepOpen: number): string[] {
  const script = `
import fcntl, os, sys, time
lock, release, keep = sys.argv[1], sys.argv[2], float(sys.argv[3])
fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
while not os.path.exists(release):
    time.sleep(0.005)
fcntl.flock(fd, fcntl.LOCK_UN)
time.sleep(keep)
open(release + ".closing", "w").close()
os.close(fd)
`;
  return ["python3", "-c", script, lock, release, String(keepOpen)];
}

test(
  `${runtimeName}: wake-ups: woken waiters of ${
    WOKEN.join(", ")
  } (async, sync, two per process) never overlap`,
  skip,
  inTemp(async (dir) => {
    const lock = join(dir, "o.lock");
    const marker = join(dir, "inside");
    const run = async (mode: "lock" | "nolock") => {
      const go = join(dir, `go-${mode}`);
      const children = WOKEN.map((flavour) =>
        start(command(flavour, "waiter.ts", [lock, "overlap", marker, "40", mode, `go=${go}`]))
      );
      const results = children.map((child) => finish(child));
      await Promise.all(children.map((child) => waitFor(child, "ready", 60_000)));
      writeFileSync(go, "");
      return await Promise.all(results);
    };
    for (const result of await run("lock")) {
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /done/);
      assert.doesNotMatch(result.stdout, /OVERLAP/);
    }
    // Control: the same critical sections without the lock do overlap.
    const unlocked = await run("nolock");
    assert.ok(
      unlocked.some((result) => result.stdout.includes("OVERLAP")),
      "without the lock the marker shows an overlap",
    );
  }),
);

for (const flavour of WOKEN) {
  test(
    `${runtimeName}: wake-ups: ${flavour}: a release wakes the waiter; an unlock without a close is handed over by the fallback poll`,
    skip,
    inTemp(async (dir) => {
      const lock = join(dir, "w.lock");
      const wait = async (keepOpen: number, extra: string[]) => {
        const release = join(dir, `release-${keepOpen}-${extra.join("")}`);
        const holder = start(pythonHolder(lock, release, keepOpen));
        const held = finish(holder);
        await waitFor(holder, "held");
        const waiter = start(command(flavour, "waiter.ts", [lock, "once", "30000", ...extra]));
        const result = finish(waiter);
        await waitFor(waiter, "waiting", 60_000);
        await sleep(300); // the waiter is past its first polls, asleep
        writeFileSync(release, "");
        const done = await result;
        // Made before the holder's close: absent, the waiter got the lock with no close at all.
        const holderStillOpen = !existsSync(`${release}.closing`);
        holder.kill("SIGKILL");
        await held;
        return { ...done, holderStillOpen };
      };
      // The holder closes its descriptor: the close wakes the waiter (no poll could: none runs).
      const woken = await wait(0, ["nofallback"]);
      assert.equal(woken.stdout.trim().split("\n").at(-1), "held event", woken.stderr);
      // The holder unlocks and keeps the file open: no event; the fallback poll hands it over.
      const polled = await wait(30, []);
      assert.equal(polled.stdout.trim().split("\n").at(-1), "held poll", polled.stderr);
      assert.ok(polled.holderStillOpen, "handed over while the holder still had the file open");
      // Control: without the fallback poll, the same waiter gets it only when the holder closes.
      const unpolled = await wait(1.5, ["nofallback"]);
      assert.equal(unpolled.stdout.trim().split("\n").at(-1), "held event", unpolled.stderr);
      assert.ok(!unpolled.holderStillOpen, "it needed the holder's close");
    }),
  );
}

test(
  `${runtimeName}: wake-ups: a flock(1) holder (read-only descriptor, no write close) is handed over`,
  skip,
  inTemp(async (dir) => {
    const lock = join(dir, "f.lock");
    const holder = start(["flock", lock, "sh", "-c", "echo held; sleep 0.5"]);
    const held = finish(holder);
    await waitFor(holder, "held");
    const waiter = start(command(WOKEN[0]!, "waiter.ts", [lock, "once", "30000"]));
    const done = await finish(waiter);
    assert.match(done.stdout, /held (poll|event)/, done.stderr);
    assert.equal((await held).code, 0);
  }),
);

for (const flavour of WOKEN) {
  test(
    `${runtimeName}: wake-ups: ${flavour}: a process whose waiters timed out or were aborted exits by itself`,
    skip,
    inTemp(async (dir) => {
      const lock = join(dir, "a.lock");
      const stop = await flockHolder(lock);
      try {
        const child = start(command(flavour, "waiter.ts", [lock, "abandon"]));
        const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
        const result = await finish(child);
        clearTimeout(guard);
        assert.equal(result.signal, null, "it ended by itself");
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /abandoned timeout timeout abandoned/);
      } finally {
        await stop();
      }
    }),
  );
}

/** A python3 loop that takes the lock for 30 ms and lets it go, until `stop` exists: a release (a writer's close) every 30 ms. */
function churningHolder(lock: string, stop: string): string[] {
  const script = `
import fcntl, os, sys, time
lock, stop = sys.argv[1], sys.argv[2]
print("churning", flush=True)
while not os.path.exists(stop):
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    time.sleep(0.03)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    time.sleep(0.001)
`;
  return ["python3", "-c", script, lock, stop];
}

for (const flavour of ["bun", "node"] as const) {
  test(
    `${runtimeName}: wake-ups: ${flavour}: processes that waited exit cleanly while releases go on (no death by SIGIO)`,
    skip,
    inTemp(async (dir) => {
      const lock = join(dir, "s.lock");
      const stop = join(dir, "stop");
      const holder = start(churningHolder(lock, stop));
      await waitFor(holder, "churning");
      try {
        const runs = await Promise.all(
          Array.from(
            { length: 16 },
            () => finish(start(command(flavour, "waiter.ts", [lock, "exit"]))),
          ),
        );
        for (const run of runs) {
          assert.equal(run.signal, null, `died of ${run.signal}: ${run.stderr}`);
          assert.equal(run.code, 0, run.stderr);
        }
        // Control: O_ASYNC left on once no listener is there, as at a runtime's exit: death.
        const unsafe = await finish(start(command(flavour, "waiter.ts", [lock, "exit", "unsafe"])));
        assert.equal(unsafe.signal ?? unsafe.code, unsafe.signal === null ? 128 + 29 : "SIGIO");
      } finally {
        writeFileSync(stop, "");
        await finish(holder);
      }
    }),
  );
}

test(
  `${runtimeName}: wake-ups: a process that waits again is woken again (with no fallback poll at all)`,
  { skip: reason ?? (asyncWakeupsAvailable() ? undefined : "no FFI for inotify here") },
  inTemp(async (dir) => {
    const lock = join(dir, "again.lock");
    // Takes the lock, says "held N", and lets go once release-N exists; N times.
    const script = `
import fcntl, os, sys, time
lock, dir = sys.argv[1], sys.argv[2]
for n in range(3):
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print(f"held {n}", flush=True)
    while not os.path.exists(os.path.join(dir, f"release-{n}")):
        time.sleep(0.005)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    time.sleep(0.05)
`;
    const holder = start(["python3", "-c", script, lock, dir]);
    const held = finish(holder);
    const fallback = waitTestHooks.fallbackPollMs;
    waitTestHooks.fallbackPollMs = Infinity; // only a wake-up can hand the lock over
    try {
      for (let n = 0; n < 3; n++) {
        await waitFor(holder, `held ${n}`);
        const waiting = acquire(lock, { timeout: 20_000 });
        await sleep(200); // queued, watched, asleep
        writeFileSync(join(dir, `release-${n}`), "");
        const lock_ = await waiting; // a lost wake-up would time out
        await sleep(20);
        lock_.releaseSync();
      }
    } finally {
      waitTestHooks.fallbackPollMs = fallback;
      holder.kill("SIGKILL");
      await held;
    }
  }),
);

/** inotify watches this process holds, from /proc/self/fdinfo ("inotify wd:" lines). */
function inotifyWatches(): number {
  let count = 0;
  for (const fd of readdirSync("/proc/self/fdinfo")) {
    try {
      count +=
        (readFileSync(`/proc/self/fdinfo/${fd}`, "utf8").match(/^inotify wd:/gm) ?? []).length;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

test(
  `${runtimeName}: wake-ups: an abort right after acquire() is not missed; waits on many files leave no watch`,
  { skip: reason ?? (asyncWakeupsAvailable() ? undefined : "no FFI for inotify here") },
  inTemp(async (dir) => {
    const paths = Array.from({ length: 20 }, (_, i) => join(dir, `m${i}.lock`));
    const stops = await Promise.all(paths.map((path) => flockHolder(path)));
    try {
      // Aborted in the same tick: before the waiter queued, watched and slept.
      for (const path of paths) {
        const controller = new AbortController();
        const reason = new Error("never mind");
        const waiting = acquire(path, { signal: controller.signal });
        controller.abort(reason);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("the abort was missed")), 5000);
        });
        await assert.rejects(Promise.race([waiting, late]), (e) => e === reason);
        clearTimeout(timer);
      }
      // Timed-out waits on every file: each armed a watch; none is left once they are gone.
      await Promise.allSettled(paths.map((path) => acquire(path, { timeout: 50 })));
      assert.equal(inotifyWatches(), 0, "no watch left after the waits");
    } finally {
      await Promise.all(stops.map((stop) => stop()));
    }
  }),
);

test(
  `${runtimeName}: wake-ups: a stale waiter's mark never makes a short acquire of a free lock time out`,
  { skip: reason ?? (asyncWakeupsAvailable() ? undefined : "no FFI for inotify here") },
  inTemp(async (dir) => {
    const lock = join(dir, "stale.lock");
    (await acquire(lock)).releaseSync(); // this process took this file last
    // A waiter that gave up long ago left its mark (the access time, as markWaiting sets it).
    const marked = new Date(Date.now() - 1000);
    utimesSync(lock, marked, statSync(lock).mtime);
    const held = await acquire(lock, { timeout: 3 }); // no time to give it back and wait
    held.releaseSync();
    utimesSync(lock, new Date(Date.now() - 500), statSync(lock).mtime);
    const sync = acquireSync(lock, { timeout: 3 });
    sync.releaseSync();
  }),
);

if (runtimeName === "deno") {
  test(
    `${runtimeName}: wake-ups: one background poll at most, however fast waits follow each other`,
    { skip: reason ?? (asyncWakeupsAvailable() ? undefined : "no FFI for inotify here") },
    inTemp(async (dir) => {
      const lock = join(dir, "p.lock");
      const stop = join(dir, "stop");
      const holder = start(churningHolder(lock, stop));
      await waitFor(holder, "churning");
      let most = 0;
      try {
        for (let i = 0; i < 60; i++) {
          const held = await acquire(lock, { timeout: 10_000 });
          most = Math.max(most, threadsInPoll());
          held.releaseSync(); // straight into the next wait: no turn of the event loop
        }
      } finally {
        writeFileSync(stop, "");
        await finish(holder);
      }
      assert.ok(most <= 1, `${most} threads in poll at once`);
    }),
  );
}

/** Threads of this process blocked in poll(2)/ppoll(2) (x86_64: 7, 271; aarch64: 73). */
function threadsInPoll(): number {
  let count = 0;
  for (const task of readdirSync("/proc/self/task")) {
    try {
      const call = readFileSync(`/proc/self/task/${task}/syscall`, "utf8").split(" ")[0];
      const number = Number(call);
      if (process.arch === "arm64" ? number === 73 : number === 7 || number === 271) count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

const sigioListeners = () =>
  runtimeName === "deno" ? 0 : (process as { listenerCount(name: string): number }).listenerCount(
    "SIGIO",
  );

test(
  `${runtimeName}: wake-ups: cancelled waiters leave no descriptor, listener or thread behind`,
  { skip: reason ?? (asyncWakeupsAvailable() ? undefined : "no FFI for inotify here") },
  inTemp(async (dir) => {
    const lock = join(dir, "c.lock");
    const stop = await flockHolder(lock);
    try {
      await sleep(IDLE_CLOSE_MS + 300); // anything earlier tests left open has closed
      const descriptors = openDescriptors();
      const listeners = sigioListeners();
      const polling = threadsInPoll();
      const controller = new AbortController();
      const waits = [
        acquire(lock, { timeout: 300 }),
        acquire(lock, { timeout: 600 }),
        acquire(lock, { signal: controller.signal }),
      ];
      await sleep(150);
      // Control: while they wait, what the check looks for is there.
      assert.ok(openDescriptors() > descriptors, "an inotify descriptor while waiting");
      if (runtimeName !== "deno") assert.equal(sigioListeners(), listeners + 1);
      else assert.equal(threadsInPoll(), polling + 1, "Deno: one thread in poll while waiting");
      controller.abort(new Error("cancelled"));
      const results = await Promise.allSettled(waits);
      assert.ok(
        results[0]!.status === "rejected" && results[0]!.reason instanceof LockTimeoutError,
      );
      assert.ok(
        results[1]!.status === "rejected" && results[1]!.reason instanceof LockTimeoutError,
      );
      assert.ok(results[2]!.status === "rejected" && results[2]!.reason.message === "cancelled");
      // The poll returns once woken through its eventfd: a moment, not a timeout.
      for (let i = 0; i < 100 && threadsInPoll() > polling; i++) await sleep(20);
      assert.equal(threadsInPoll(), polling, "no thread left in poll");
      await sleep(IDLE_CLOSE_MS + 300);
      assert.equal(openDescriptors(), descriptors, "no descriptor left");
      assert.equal(sigioListeners(), listeners, "no SIGIO listener left");
    } finally {
      await stop();
    }
  }),
);
