// The pidfile backend across real processes of all three runtimes; Deno runs
// without FFI, as a degraded user would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { acquire, inspect, tryAcquire } from "../../mod.ts";
import {
  command,
  countTogether,
  dead,
  deadPid,
  exited,
  finish,
  type Flavour,
  inTemp,
  PIDFILE_FLAVOURS,
  runtimeName,
  signal as sendSignal,
  start,
  waitFor,
} from "../helpers.ts";

const PIDFILE = { backend: "pidfile" } as const;

const N = 40;

async function counter(dir: string, mode: "lock" | "nolock"): Promise<number> {
  const { total, lockLeft } = await countTogether(
    dir,
    N,
    PIDFILE_FLAVOURS,
    () => [mode, "pidfile"],
  );
  assert.ok(!lockLeft, "the last holder removed the lock file");
  return total;
}

test(
  `${runtimeName}: pidfile: counter across Deno (no FFI), Bun and Node is exact`,
  inTemp(async (dir) => {
    assert.equal(await counter(dir, "lock"), N * PIDFILE_FLAVOURS.length);
  }),
);

test(
  `${runtimeName}: pidfile: control: the same counter without the lock loses updates`,
  inTemp(async (dir) => {
    const total = await counter(dir, "nolock");
    assert.notEqual(total, N * PIDFILE_FLAVOURS.length, `expected lost updates, got ${total}`);
  }),
);

for (const flavour of PIDFILE_FLAVOURS) {
  test(
    `${runtimeName}: pidfile: a ${flavour} holder killed with SIGKILL is reclaimed promptly, never before`,
    inTemp(async (dir) => {
      const lock = join(dir, "k.lock");
      const holder = start(command(flavour, "pidfile_holder.ts", [lock, "wait"]));
      let died = 0;
      try {
        await waitFor(holder, "held");
        const status = inspect(lock, PIDFILE);
        assert.equal(status.state, "held");
        assert.equal(status.holders[0].pid, holder.pid);
        let acquiredAt = 0;
        const waiting = acquire(lock, { ...PIDFILE, timeout: 15_000 }).then((l) => {
          acquiredAt = performance.now();
          return l;
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(acquiredAt, 0, "not taken while the holder lives");
        died = performance.now();
        holder.kill("SIGKILL");
        const next = await waiting;
        const delay = acquiredAt - died;
        console.log(`# ${flavour} holder: reclaimed ${delay.toFixed(1)} ms after SIGKILL`);
        assert.ok(delay < 1000, `reclaimed ${delay} ms after death`);
        next.releaseSync();
      } finally {
        if (died === 0) holder.kill("SIGKILL");
        await exited(holder);
      }
      assert.deepEqual(readdirSync(dir), []);
    }),
  );
}

test(
  `${runtimeName}: pidfile: a record naming a live holder in another process is not reclaimed`,
  inTemp(async (dir) => {
    const lock = join(dir, "l.lock");
    const holder = start(command("bun", "pidfile_holder.ts", [lock, "wait"]));
    try {
      await waitFor(holder, "held");
      assert.equal(tryAcquire(lock, PIDFILE), null);
      const error = await acquire(lock, { ...PIDFILE, timeout: 100 }).catch((e) => e);
      assert.match(String(error), new RegExp(`held by pid ${holder.pid} on host .*, bun\\)`));
      assert.equal(JSON.parse(readFileSync(lock, "utf8")).pid, holder.pid, "left alone");
    } finally {
      holder.kill("SIGKILL");
      await dead(holder.pid!);
    }
  }),
);

const RACERS: Flavour[] = [
  ...Array<Flavour>(6).fill("bun"),
  ...Array<Flavour>(5).fill("deno-plain"),
  ...Array<Flavour>(5).fill("node"),
];
const ROUNDS = 4;

/** Runs ROUNDS rounds of 16 racers against one stale record; returns the winners per round. */
async function reclaimRace(dir: string, flags: string[]): Promise<number[]> {
  const lock = join(dir, "race.lock");
  const racers = RACERS.map((f) =>
    start(command(f, "race.ts", [lock, dir, String(ROUNDS), ...flags]))
  );
  const outputs = racers.map(() => "");
  racers.forEach((r, i) => r.stdout?.on("data", (d) => (outputs[i] += d)));
  const done = racers.map((r) => finish(r));
  const lines = (word: string) => outputs.filter((o) => o.includes(word)).length;
  const until = async (predicate: () => boolean, what: string) => {
    const limit = performance.now() + 60_000;
    while (!predicate()) {
      if (performance.now() > limit) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const winners: number[] = [];
  try {
    await until(() => lines("ready") === racers.length, "all racers ready");
    for (let round = 0; round < ROUNDS; round++) {
      writeFileSync(
        lock,
        `${
          JSON.stringify({
            pid: await deadPid(),
            hostname: hostname(),
            startToken: null,
            acquiredAt: new Date().toISOString(),
            token: `${round}`.padStart(32, "a"),
            backend: "pidfile",
          })
        }\n`,
      );
      writeFileSync(join(dir, `go-${round}`), "");
      const settled = () =>
        outputs.filter((o) => o.includes(`won ${round}`) || o.includes(`busy ${round}`)).length;
      await until(() => settled() === racers.length, `round ${round} results`);
      const won = lines(`won ${round}`);
      winners.push(won);
      writeFileSync(join(dir, `release-${round}`), "");
      await until(() => lines(`released ${round}`) === won, `round ${round} releases`);
      if (existsSync(lock)) rmSync(lock); // naive winners may leave each other's files
    }
  } finally {
    for (const r of racers) if (r.exitCode === null) r.kill("SIGKILL");
    await Promise.all(done);
  }
  return winners;
}

test(
  `${runtimeName}: pidfile: 16 processes of three runtimes meeting one stale record: exactly one wins`,
  inTemp(async (dir) => {
    const winners = await reclaimRace(dir, ["slow"]);
    console.log(`# winners per round: ${winners.join(", ")}`);
    assert.deepEqual(winners, Array(ROUNDS).fill(1));
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes("race.lock")),
      [],
      "no guard file left",
    );
  }),
);

test(
  `${runtimeName}: pidfile: control: a naive remove-then-create reclaim lets several win`,
  inTemp(async (dir) => {
    const winners = await reclaimRace(dir, ["slow", "naive"]);
    console.log(`# naive winners per round: ${winners.join(", ")}`);
    assert.ok(winners.some((w) => w > 1), `expected a round with several winners: ${winners}`);
  }),
);

for (const flavour of PIDFILE_FLAVOURS) {
  test(
    `${runtimeName}: pidfile: a ${flavour} holder removes its lock on exit, and when it dies of SIGINT or SIGTERM`,
    inTemp(async (dir) => {
      // Ends without releasing: the heartbeat timer must not keep it alive.
      const endLock = join(dir, "end.lock");
      const ended = await finish(start(command(flavour, "pidfile_holder.ts", [endLock, "end"])));
      assert.equal(ended.code, 0, ended.stderr);
      assert.match(ended.stdout, /held/);
      assert.ok(!existsSync(endLock), "removed on exit");

      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        const lock = join(dir, `${signal}.lock`);
        const holder = start(command(flavour, "pidfile_holder.ts", [lock, "wait"]));
        const result = finish(holder);
        await waitFor(holder, "held");
        sendSignal(holder, signal);
        const { code, signal: by } = await result;
        // The signal's default action still happens: death by that signal.
        assert.ok(by === signal || code === 128 + (signal === "SIGINT" ? 2 : 15), `${code} ${by}`);
        if (flavour === "deno-plain") {
          // Deno cannot count the program's own signal listeners, so it never
          // removes a lock on a signal: the record of the dead holder is
          // reclaimed by the next acquire, at once.
          assert.equal(inspect(lock, PIDFILE).state, "stale", `left on ${signal}, stale`);
          const next = tryAcquire(lock, PIDFILE);
          assert.ok(next, `reclaimed after ${signal}`);
          next.releaseSync();
        } else {
          assert.ok(!existsSync(lock), `removed on ${signal}`);
        }
      }

      // A program with its own SIGTERM handler decides for itself: we do not pre-empt it.
      const lock = join(dir, "handler.lock");
      const holder = start(command(flavour, "pidfile_holder.ts", [lock, "handler"]));
      try {
        await waitFor(holder, "held");
        const handled = waitFor(holder, "handled");
        sendSignal(holder, "SIGTERM");
        await handled;
        assert.ok(existsSync(lock), "still held by the running process");
        assert.equal(holder.exitCode, null);
      } finally {
        holder.kill("SIGKILL");
        await exited(holder);
      }
    }),
  );
}
