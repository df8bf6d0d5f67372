import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { acquireSync, tryAcquire } from "../../mod.ts";
import {
  command,
  countTogether,
  dead,
  exited,
  finish,
  FLAVOURS,
  hasCommand,
  inTemp,
  runtimeName,
  runTogether,
  start,
  waitFor,
} from "../helpers.ts";

const FLOCK = hasCommand("flock");
const PYTHON = hasCommand("python3");
if (!FLOCK) console.log("SKIP flock(1) holder: util-linux flock not on PATH");
if (!PYTHON) console.log("SKIP python holder: python3 not on PATH");

function flockLoop(lock: string, counter: string, n: number): string[] {
  // Escaped so that the inner shell, run under the lock, does the read.
  const body = `n=\\$(cat '${counter}'); sleep 0.001; echo \\$((n+1)) > '${counter}'`;
  return ["sh", "-c", `for i in $(seq ${n}); do flock '${lock}' sh -c "${body}" || exit 1; done`];
}

function pythonLoop(lock: string, counter: string, n: number): string[] {
  const script = `
import fcntl, os, time, sys
lock, counter, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    v = int(open(counter).read() or "0")
    time.sleep(0.001)
    open(counter, "w").write(str(v + 1))
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
`;
  return ["python3", "-c", script, lock, counter, String(n)];
}

const N = 25;

test(
  `${runtimeName}: counter across Deno (ffi), Deno (native), Bun, Node, flock(1), python is exact`,
  inTemp(async (dir) => {
    const others = (lock: string, counter: string): string[][] => [
      ...(FLOCK ? [flockLoop(lock, counter, N)] : []),
      ...(PYTHON ? [pythonLoop(lock, counter, N)] : []),
    ];
    const foreign = others("", "").length;
    const { total } = await countTogether(dir, N, FLAVOURS, () => ["lock"], others);
    assert.equal(total, N * (FLAVOURS.length + foreign));
  }),
);

test(
  `${runtimeName}: control: the same counter without the lock loses updates`,
  inTemp(async (dir) => {
    // More rounds than the locked run: a loss must not depend on lucky timing.
    const rounds = 3 * N;
    const { total } = await countTogether(dir, rounds, FLAVOURS, () => ["nolock"]);
    const expected = rounds * FLAVOURS.length;
    // Lost, or torn by overlapping writes (NaN): anything but exact.
    assert.notEqual(total, expected, `expected lost updates, got ${total} of ${expected}`);
  }),
);

async function cleanerRace(
  dir: string,
  flags: string[],
): Promise<{ total: number; expected: number }> {
  const lock = join(dir, "r.lock");
  const counter = join(dir, "counter");
  const stop = join(dir, "stop");
  writeFileSync(counter, "0");
  const cleaner = start(command("deno-ffi", "cleaner.ts", [lock, stop]));
  const cleanerDone = finish(cleaner);
  const holders = ["deno-ffi", "bun", "node", "deno-ffi"] as const;
  try {
    await runTogether(
      holders.map((f) =>
        command(f, "counter.ts", [lock, counter, "60", "lock", "remove", "slowopen", ...flags])
      ),
      dir,
    );
  } finally {
    writeFileSync(stop, "");
    await cleanerDone;
  }
  return { total: Number(readFileSync(counter, "utf8")), expected: 60 * holders.length };
}

test(
  `${runtimeName}: cleaner race with removeOnRelease keeps the counter exact`,
  inTemp(async (dir) => {
    const { total, expected } = await cleanerRace(dir, []);
    assert.equal(total, expected);
  }),
);

test(
  `${runtimeName}: control: without identity verification the cleaner race loses updates`,
  inTemp(async (dir) => {
    const { total, expected } = await cleanerRace(dir, ["noidentity"]);
    assert.ok(total < expected, `expected lost updates, got ${total} of ${expected}`);
  }),
);

for (const flavour of FLAVOURS) {
  test(
    `${runtimeName}: a ${flavour} holder killed with SIGKILL frees the lock at once`,
    inTemp(async (dir) => {
      const lock = join(dir, "k.lock");
      const holder = start(command(flavour, "holder.ts", [lock, "wait"]));
      try {
        await waitFor(holder, "held");
        assert.equal(tryAcquire(lock), null, "held while the holder lives");
      } finally {
        holder.kill("SIGKILL");
        await dead(holder.pid!);
      }
      const next = tryAcquire(lock);
      assert.ok(next, "free right after the holder died");
      next.releaseSync();
    }),
  );
}

for (const flavour of ["deno-ffi", "bun", "node"] as const) {
  test(
    `${runtimeName}: a ${flavour} holder's children inherit nothing`,
    inTemp(async (dir) => {
      const lock = join(dir, "ch.lock");
      // Releases while its child runs on: the lock is really free.
      const holder = start(command(flavour, "holder.ts", [lock, "child"]));
      let out = "";
      holder.stdout?.on("data", (d) => (out += d));
      try {
        await waitFor(holder, "released");
        const next = tryAcquire(lock);
        assert.ok(next, "free after release although the child lives");
        next.releaseSync();
      } finally {
        holder.kill("SIGKILL");
        await exited(holder);
        const pid = Number(/child=(\d+)/.exec(out)?.[1]);
        if (pid) process.kill(pid, "SIGKILL");
      }
      // Exits without releasing while its child runs on: the lock dies with it.
      const orphaner = start(command(flavour, "holder.ts", [lock, "orphan"]));
      const result = await finish(orphaner);
      const pid = Number(/child=(\d+)/.exec(result.stdout)?.[1]);
      try {
        assert.ok(pid > 0, result.stderr);
        const next = tryAcquire(lock);
        assert.ok(next, "free after the holder exited although its child lives");
        next.releaseSync();
      } finally {
        if (pid) process.kill(pid, "SIGKILL");
      }
    }),
  );
}

test(
  `${runtimeName}: acquireSync without a timeout waits for a flock(1) holder and gets the lock at its release`,
  { skip: FLOCK ? undefined : "util-linux flock(1) is not on PATH" },
  inTemp(async (dir) => {
    const lock = join(dir, "b.lock");
    // flock(1) holds for 0.4 s, then exits: the blocked acquireSync must return right after.
    const holder = start(["flock", lock, "sh", "-c", "echo held; sleep 0.4"]);
    const done = finish(holder);
    await waitFor(holder, "held");
    const started = performance.now();
    const lock2 = acquireSync(lock);
    const waited = performance.now() - started;
    await done;
    assert.ok(waited >= 250, `returned after ${waited} ms, while flock(1) still held the lock`);
    assert.ok(waited < 5000, `returned only after ${waited} ms`);
    lock2.releaseSync();
  }),
);
