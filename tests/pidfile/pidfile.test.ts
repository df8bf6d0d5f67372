// The pidfile backend in one process: the record, staleness rules, reclaim,
// malformed records, compromise, heartbeat and inspect().
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  acquire,
  inspect,
  LockError,
  LockTimeoutError,
  probe,
  tryAcquire,
  withLock,
} from "../../mod.ts";
import { guardPath } from "../../src/pidfile/guard_name.ts";
import { dead, deadPid, exited, inTemp, pidfileRecord, runtimeName } from "../helpers.ts";

const PIDFILE = { backend: "pidfile" } as const;

/** The start token the library computes for `pid` (Linux). */
function startTokenOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  return `${fields[19]}@${boot}`;
}

/** Sets the file's mtime `ms` into the past. */
function age(path: string, ms: number): void {
  const then = (Date.now() - ms) / 1000;
  utimesSync(path, then, then);
}

async function livePid(): Promise<{ pid: number; stop: () => Promise<void> }> {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  await new Promise((resolve) => child.once("spawn", resolve));
  return {
    pid: child.pid!,
    stop: async () => {
      child.kill("SIGKILL");
      await exited(child);
      // Deno's child.kill reports the exit before the process is gone: ask /proc.
      await dead(child.pid!);
    },
  };
}

/** Takes the lock once (it must be free or reclaimable) and releases it. */
function takes(path: string, options: Record<string, unknown> = {}): boolean {
  const lock = tryAcquire(path, { ...PIDFILE, ...options });
  if (lock === null) return false;
  lock.releaseSync();
  return true;
}

test(`${runtimeName}: pidfile: probe reports the degraded mode when asked for it`, () => {
  const result = probe(PIDFILE);
  assert.equal(result.backend, "pidfile");
  assert.equal(result.degraded, true);
  assert.match(result.reason, /pidfile/);
});

test(
  `${runtimeName}: pidfile: the record is one JSON line naming the holder; release removes it`,
  inTemp((dir) => {
    const path = join(dir, "a.lock");
    const before = Date.now();
    const lock = tryAcquire(path, { ...PIDFILE, mode: 0o600 });
    assert.ok(lock);
    assert.equal(lock.backend, "pidfile");
    assert.equal(lock.shared, false);
    const text = readFileSync(path, "utf8");
    assert.equal(text.indexOf("\n"), text.length - 1, "exactly one line");
    const r = JSON.parse(text);
    assert.equal(r.pid, process.pid);
    assert.equal(r.hostname, hostname());
    assert.equal(r.startToken, startTokenOf(process.pid));
    assert.match(r.token, /^[0-9a-f]{32}$/);
    assert.ok(Date.parse(r.acquiredAt) >= before - 1000);
    assert.equal(r.backend, "pidfile");
    assert.equal(r.runtime, runtimeName);
    assert.equal(lstatSync(path).mode & 0o777, 0o600);
    assert.equal(tryAcquire(path, PIDFILE), null, "a second holder is refused");
    lock.releaseSync();
    assert.equal(lock.released, true);
    assert.deepEqual(readdirSync(dir), [], "nothing left behind");
    lock.releaseSync();
  }),
);

test(
  `${runtimeName}: pidfile: acquire waits, withLock releases, timeout names the holder`,
  inTemp(async (dir) => {
    const path = join(dir, "w.lock");
    const first = await acquire(path, PIDFILE);
    const error = await acquire(path, { ...PIDFILE, timeout: 60 }).catch((e) => e);
    assert.ok(error instanceof LockTimeoutError);
    assert.match(
      error.message,
      new RegExp(`held by this process \\(pid ${process.pid}\\) on host `),
    );
    assert.equal(error.holders.length, 1);
    assert.equal(error.holders[0].pid, process.pid);
    assert.equal(error.holders[0].backend, "pidfile");
    const waiting = acquire(path, PIDFILE);
    setTimeout(() => first.releaseSync(), 30);
    const second = await waiting;
    await second.release();
    assert.equal(await withLock(path, (lock) => lock.backend, PIDFILE), "pidfile");
    assert.deepEqual(readdirSync(dir), []);
  }),
);

test(
  `${runtimeName}: pidfile: shared locks are refused, never silently exclusive`,
  inTemp((dir) => {
    assert.throws(
      () => tryAcquire(join(dir, "s.lock"), { ...PIDFILE, shared: true }),
      (e: unknown) => e instanceof LockError && e.code === "EUNSUPPORTED",
    );
    assert.deepEqual(readdirSync(dir), []);
  }),
);

test(
  `${runtimeName}: pidfile: a record naming a dead process is reclaimed`,
  inTemp(async (dir) => {
    const path = join(dir, "d.lock");
    writeFileSync(path, pidfileRecord({ pid: await deadPid() }));
    assert.equal(inspect(path, PIDFILE).state, "stale");
    assert.ok(takes(path));
    assert.deepEqual(readdirSync(dir), []);
  }),
);

test(
  `${runtimeName}: pidfile: PID reuse: a live unrelated process with another start token is not the holder`,
  inTemp(async (dir) => {
    const path = join(dir, "p.lock");
    const other = await livePid();
    try {
      // The holder's PID now belongs to `sleep`, whose start token differs.
      writeFileSync(path, pidfileRecord({ pid: other.pid, startToken: "12345@not-this-boot" }));
      assert.ok(takes(path), "reclaimed");
      // The same PID with its own start token is the holder: left alone.
      writeFileSync(path, pidfileRecord({ pid: other.pid, startToken: startTokenOf(other.pid) }));
      assert.equal(tryAcquire(path, PIDFILE), null);
      assert.equal(inspect(path, PIDFILE).state, "held");
      // Without a start token a live PID counts as the holder.
      writeFileSync(path, pidfileRecord({ pid: other.pid, startToken: null }));
      assert.equal(tryAcquire(path, PIDFILE), null);
      assert.ok(existsAndParses(path));
    } finally {
      await other.stop();
    }
    // Once it is gone, the record is stale.
    assert.ok(takes(path));
  }),
);

function existsAndParses(path: string): boolean {
  return JSON.parse(readFileSync(path, "utf8")).pid > 0;
}

test(
  `${runtimeName}: pidfile: another host's record is judged by its heartbeat and staleMs only`,
  inTemp(async (dir) => {
    const path = join(dir, "h.lock");
    // A dead PID on this host would be stale; on another host the PID means nothing here.
    writeFileSync(path, pidfileRecord({ hostname: "elsewhere.example", pid: await deadPid() }));
    assert.equal(tryAcquire(path, PIDFILE), null, "fresh, no staleMs");
    assert.equal(tryAcquire(path, { ...PIDFILE, staleMs: 60_000 }), null, "fresh, staleMs");
    age(path, 3_600_000);
    assert.equal(tryAcquire(path, PIDFILE), null, "old, but staleMs is off by default");
    assert.equal(inspect(path, PIDFILE).state, "held");
    assert.equal(inspect(path, { ...PIDFILE, staleMs: 60_000 }).state, "stale");
    assert.ok(takes(path, { staleMs: 60_000 }), "old and staleMs set: reclaimed");
    assert.deepEqual(readdirSync(dir), []);
  }),
);

test(
  `${runtimeName}: pidfile: a file that is not a record is waited out while young, then refused and never removed`,
  inTemp(async (dir) => {
    const cases: [string, Uint8Array | string][] = [
      ["empty", ""],
      ["partial", '{"pid":12'],
      ["json-not-a-record", '{"hello":"world"}\n'],
      ["hostile-token", pidfileRecord({ token: "../../../../etc/passwd" })],
      ["binary", new Uint8Array([0xff, 0x00, 0xfe, 0x01, 0x80, 0x0a])],
      ["a user's settings", '{"theme":"dark"}\n'],
    ];
    for (const [name, content] of cases) {
      const path = join(dir, `${name}.lock`);
      writeFileSync(path, content);
      const bytes = readFileSync(path);
      // Its writer may be between create and write: busy, and the timeout says why.
      assert.equal(tryAcquire(path, PIDFILE), null, `${name}: fresh is busy`);
      const error = await acquire(path, { ...PIDFILE, timeout: 30 }).catch((e) => e);
      assert.ok(error instanceof LockTimeoutError, `${name}: ${error}`);
      assert.match(error.message, /its writer may still be writing it/);
      // Old, it is somebody's data: an error that says so, and it stays.
      age(path, 60_000);
      assert.equal(inspect(path, PIDFILE).state, "unknown", name);
      assert.throws(
        () => tryAcquire(path, PIDFILE),
        (e: unknown) =>
          e instanceof LockError && e.code === "EINVAL" &&
          /not a lock record.*left alone/.test(e.message),
        name,
      );
      // A clock running ahead of the file's is no younger.
      age(path, -60_000);
      assert.throws(() => tryAcquire(path, PIDFILE), /not a lock record/, `${name}: future`);
      assert.deepEqual(readFileSync(path), bytes, `${name}: untouched`);
    }
    assert.equal(readdirSync(dir).length, cases.length, "no guard or other file left behind");
  }),
);

test(
  `${runtimeName}: pidfile: a huge file, a directory or a link at the path is an error, and untouched`,
  inTemp(async (dir) => {
    const huge = join(dir, "huge.lock");
    const data = new Uint8Array(1_500_000).fill(7);
    writeFileSync(huge, data);
    age(huge, 3_600_000);
    const error = await acquire(huge, { ...PIDFILE, timeout: 1000 }).catch((e) => e);
    assert.ok(error instanceof LockError && !(error instanceof LockTimeoutError), `${error}`);
    assert.equal(error.code, "EINVAL");
    assert.match(error.message, /1500000 bytes, which is not a lock record/);
    assert.equal(statSync(huge).size, data.length, "left alone");
    assert.throws(() => inspect(huge, PIDFILE), /not a lock record/);

    const directory = join(dir, "dir.lock");
    mkdirSync(directory);
    assert.throws(
      () => tryAcquire(directory, PIDFILE),
      (e: unknown) => e instanceof LockError && e.code === "EISDIR",
    );

    const target = join(dir, "target");
    writeFileSync(target, "precious");
    const link = join(dir, "link.lock");
    symlinkSync(target, link);
    assert.throws(
      () => tryAcquire(link, PIDFILE),
      (e: unknown) => e instanceof LockError && e.code === "ELOOP",
    );
    assert.equal(readFileSync(target, "utf8"), "precious");
    assert.ok(lstatSync(link).isSymbolicLink());

    assert.throws(
      () => tryAcquire(join(dir, "missing", "x.lock"), PIDFILE),
      (e: unknown) => e instanceof LockError && e.code === "ENOENT",
    );
    // A FIFO must not make the reader wait for a writer.
    const fifo = join(dir, "fifo.lock");
    spawnSync("mkfifo", [fifo]);
    assert.throws(
      () => tryAcquire(fifo, PIDFILE),
      (e: unknown) => e instanceof LockError && e.code === "EINVAL",
    );
    assert.deepEqual(readdirSync(dir).sort(), [
      "dir.lock",
      "fifo.lock",
      "huge.lock",
      "link.lock",
      "target",
    ]);
  }),
);

test(
  `${runtimeName}: pidfile: a reclaim guard left by a dead reclaimer is itself reclaimed`,
  inTemp(async (dir) => {
    const path = join(dir, "g.lock");
    const token = "fedcba9876543210fedcba9876543210";
    writeFileSync(path, pidfileRecord({ pid: await deadPid(), token }));
    const guard = guardPath(path, 1);
    writeFileSync(guard, pidfileRecord({ pid: await deadPid() }));
    assert.ok(takes(path));
    assert.deepEqual(readdirSync(dir), []);

    // A live guard means another process is reclaiming right now: busy.
    writeFileSync(path, pidfileRecord({ pid: await deadPid(), token }));
    writeFileSync(
      guard,
      pidfileRecord({ pid: process.pid, startToken: startTokenOf(process.pid) }),
    );
    assert.equal(tryAcquire(path, PIDFILE), null);
    unlinkSync(guard);
    assert.ok(takes(path));
    assert.deepEqual(readdirSync(dir), []);

    // An empty guard (its writer died between create and write) is ours by
    // its name: reclaimed once past the grace period, through the next level.
    writeFileSync(path, pidfileRecord({ pid: await deadPid(), token }));
    writeFileSync(guard, "");
    assert.equal(tryAcquire(path, PIDFILE), null, "a young empty guard may be being written");
    age(guard, 60_000);
    writeFileSync(guardPath(path, 2), pidfileRecord({ pid: await deadPid() }));
    assert.ok(takes(path));
    assert.deepEqual(readdirSync(dir), []);
  }),
);

test(
  `${runtimeName}: pidfile: release after the lock was stolen keeps the thief's file and reports it`,
  inTemp(async (dir) => {
    const path = join(dir, "t.lock");
    const reports: LockError[] = [];
    const lock = tryAcquire(path, { ...PIDFILE, onCompromised: (e) => reports.push(e) });
    assert.ok(lock);
    // A thief (here, a careless user) removes the file and takes the lock.
    unlinkSync(path);
    const thief = tryAcquire(path, PIDFILE);
    assert.ok(thief);
    const thiefRecord = readFileSync(path, "utf8");
    lock.releaseSync();
    assert.equal(readFileSync(path, "utf8"), thiefRecord, "the thief's file is kept");
    assert.equal(reports.length, 1);
    assert.equal(reports[0].code, "ECOMPROMISED");
    assert.equal(reports[0].path, path);
    assert.equal(reports[0].holders[0]?.pid, process.pid);
    assert.match(reports[0].message, /taken from this process/);

    // The default report is a warning naming the path and the new holder.
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
    try {
      const victim = await acquire(join(dir, "v.lock"), PIDFILE);
      unlinkSync(victim.path);
      writeFileSync(victim.path, pidfileRecord({ hostname: "thief.example", pid: 4242 }));
      await victim.release();
    } finally {
      console.warn = warn;
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /ECOMPROMISED/);
    assert.match(warnings[0], /pid 4242 on host thief\.example/);
    assert.match(warnings[0], /v\.lock/);
    thief.releaseSync();
  }),
);

test(
  `${runtimeName}: pidfile: the heartbeat refreshes the mtime and notices a theft before release`,
  inTemp(async (dir) => {
    const path = join(dir, "b.lock");
    const reports: LockError[] = [];
    // staleMs 200 makes this holder refresh every 50 ms.
    const lock = await acquire(path, {
      ...PIDFILE,
      staleMs: 200,
      onCompromised: (e) => reports.push(e),
    });
    age(path, 3_600_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(Date.now() - statSync(path).mtimeMs < 1000, "heartbeat refreshed the mtime");
    unlinkSync(path);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(reports.length, 1, "noticed by the heartbeat");
    assert.match(reports[0].message, /gone or holds no record/);
    lock.releaseSync();
    assert.equal(reports.length, 1, "reported once");
  }),
);

test(
  `${runtimeName}: pidfile: options are validated`,
  () => {
    assert.throws(() => tryAcquire("/tmp/x.lock", { ...PIDFILE, staleMs: 0 }), RangeError);
    assert.throws(
      // @ts-expect-error: wrong type on purpose
      () => tryAcquire("/tmp/x.lock", { ...PIDFILE, staleMs: "1" }),
      TypeError,
    );
    assert.throws(
      // @ts-expect-error: wrong type on purpose
      () => tryAcquire("/tmp/x.lock", { ...PIDFILE, onCompromised: 1 }),
      TypeError,
    );
  },
);

test(
  `${runtimeName}: inspect reports free, held and stale, for pidfile and kernel locks`,
  inTemp(async (dir) => {
    const path = join(dir, "i.lock");
    assert.equal(inspect(path, PIDFILE).state, "free");
    const lock = tryAcquire(path, PIDFILE)!;
    const status = inspect(path, PIDFILE);
    assert.equal(status.state, "held");
    assert.equal(status.holders[0].pid, process.pid);
    assert.equal(status.holders[0].hostname, hostname());
    assert.equal(status.holders[0].alive, true);
    assert.ok(status.holders[0].since);
    lock.releaseSync();

    const kernel = tryAcquire(path)!;
    const held = inspect(path);
    assert.equal(held.state, "held");
    assert.deepEqual(held.holders.map((h) => [h.backend, h.pid, h.shared]), [
      ["flock", process.pid, false],
    ]);
    const error = await acquire(path, { timeout: 20 }).catch((e) => e);
    assert.ok(error instanceof LockTimeoutError);
    assert.match(
      error.message,
      new RegExp(`held by this process \\(pid ${process.pid}\\) .*flock, exclusive`),
    );
    kernel.releaseSync();
    assert.equal(inspect(path).state, "free");
    assert.throws(() => inspect(path, { backend: "nope" as "ffi" }), TypeError);
  }),
);
