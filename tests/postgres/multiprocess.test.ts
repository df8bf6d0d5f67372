// @lockkit/filelock/postgres across real processes of Deno, Bun and Node
// (tests/postgres/workers/), against a real PostgreSQL that this file starts:
// a counter kept exact by the lock (and losing updates without it), fences
// strictly increasing across processes, a holder killed with SIGKILL, and a
// holder paused past its lease, whose stale write only the fence stops.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { postgresLocks } from "../../src/postgres/mod.ts";
import {
  command,
  exited,
  type Flavour,
  runtimeName,
  runTogether,
  signal as sendSignal,
  start,
  tempDir,
  waitFor,
} from "../helpers.ts";
import { type ClientKind, connect, pgTest, sleep, stopTest, suite, until } from "./helpers.ts";

const s = await suite("postgres multi-process tests");

/** A worker of tests/postgres/workers/ in a runtime. */
function worker(flavour: Flavour, script: string, args: string[]): string[] {
  return command(flavour, join("..", "postgres", "workers", script), args);
}

/** The processes of the counter: each runtime, and Bun.sql; two connections each. */
const COUNTERS: Array<[Flavour, ClientKind]> = [
  ["deno-ffi", "porsager"],
  ["bun", "porsager"],
  ["bun", "bunsql"],
  ["node", "porsager"],
];
const LOOPS = 2;
const N = 12;

async function count(mode: "lock" | "nolock"): Promise<{ total: number; fences: bigint[] }> {
  await s.spy.query(
    "CREATE TABLE IF NOT EXISTS counter (id int PRIMARY KEY, v int NOT NULL); " +
      "CREATE TABLE IF NOT EXISTS fence_log (v int NOT NULL, fence bigint NOT NULL, writer text)",
  );
  await s.spy.query("TRUNCATE counter, fence_log; INSERT INTO counter VALUES (1, 0)");
  const dir = tempDir();
  try {
    await runTogether(
      COUNTERS.map(([flavour, client]) =>
        worker(flavour, "counter.ts", [
          s.url,
          "counter",
          String(N),
          mode,
          `client=${client}`,
          `loops=${LOOPS}`,
        ])
      ),
      dir,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const [row] = await s.spy.query("SELECT v FROM counter WHERE id = 1");
  const log = await s.spy.query("SELECT fence::text FROM fence_log ORDER BY v");
  return { total: Number(row.v), fences: log.map((r) => BigInt(String(r.fence))) };
}

const EXPECTED = COUNTERS.length * LOOPS * N;

pgTest(s, "a counter across Deno, Bun (and Bun.sql) and Node processes is exact", async () => {
  const { total, fences } = await count("lock");
  assert.equal(total, EXPECTED);
  // In the order of the values they wrote, the holders' fences strictly increase.
  assert.equal(fences.length, EXPECTED);
  for (let i = 1; i < fences.length; i++) {
    assert.ok(fences[i] > fences[i - 1], `fence ${fences[i]} after ${fences[i - 1]}`);
  }
});

pgTest(s, "control: the same counter without the lock loses updates", async () => {
  const { total } = await count("nolock");
  assert.ok(total < EXPECTED, `expected lost updates, got ${total} of ${EXPECTED}`);
});

/** Collects a child's stdout lines. */
function output(child: ChildProcess): string[] {
  const lines: string[] = [];
  let partial = "";
  child.stdout?.on("data", (data) => {
    const text = partial + data;
    const parts = text.split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
  });
  return lines;
}

function fenceOf(lines: string[]): bigint {
  const line = lines.find((l) => l.startsWith("held "));
  assert.ok(line, `no 'held' line in ${JSON.stringify(lines)}`);
  return BigInt(line.slice(5));
}

const HOLDERS: Array<[Flavour, ClientKind]> = [
  ["deno-ffi", "porsager"],
  ["bun", runtimeName === "bun" ? "bunsql" : "porsager"],
  ["node", "porsager"],
];

for (const [flavour, kind] of HOLDERS) {
  pgTest(s, `a ${flavour} (${kind}) holder killed with SIGKILL frees the lock`, async () => {
    const name = `kill-${flavour}-${kind}`;
    const client = connect("porsager", s.url, 2);
    const holder = start(worker(flavour, "holder.ts", [s.url, name, "30000", `client=${kind}`]));
    const lines = output(holder);
    let killed = false;
    try {
      await waitFor(holder, "held");
      const locks = postgresLocks(client.sql);
      let acquiredAt = 0;
      const waiting = locks.acquire(name, { timeout: 15_000 }).then((lock) => {
        acquiredAt = performance.now();
        return lock;
      });
      await sleep(300);
      assert.equal(acquiredAt, 0, "not taken while the holder lives");
      holder.kill("SIGKILL");
      killed = true;
      const next = await waiting;
      assert.ok(next.fence > fenceOf(lines));
      await next.release();
    } finally {
      if (!killed) holder.kill("SIGKILL");
      await exited(holder);
      await client.end();
    }
  });
}

// The holder runs in this test's own runtime (each runtime's run covers its
// own), with Bun.sql in Bun.
const PAUSED: [Flavour, ClientKind] = runtimeName === "deno"
  ? ["deno-ffi", "porsager"]
  : runtimeName === "bun"
  ? ["bun", "bunsql"]
  : ["node", "porsager"];

pgTest(
  s,
  `a ${PAUSED[0]} (${
    PAUSED[1]
  }) holder paused past its lease loses the lock to a contender with a higher fence`,
  async () => {
    const [flavour, kind] = PAUSED;
    const name = `pause-${flavour}`;
    await s.spy.query(
      "DROP TABLE IF EXISTS resource, unfenced; " +
        "CREATE TABLE resource (id int PRIMARY KEY, owner text, fence bigint NOT NULL); " +
        "CREATE TABLE unfenced (id int PRIMARY KEY, owner text); " +
        "INSERT INTO resource VALUES (1, 'nobody', 0); INSERT INTO unfenced VALUES (1, 'nobody')",
    );
    const dir = tempDir();
    const go = join(dir, "go");
    const client = connect("porsager", s.url, 3);
    const locks = postgresLocks(client.sql);
    const holder = start(
      worker(flavour, "holder.ts", [s.url, name, "1500", `client=${kind}`, `go=${go}`]),
    );
    const lines = output(holder);
    let stopped = false;
    try {
      await waitFor(holder, "held");
      const held = fenceOf(lines);

      // Control: a pause shorter than the lease (1.5 s) keeps the lock.
      sendSignal(holder, "SIGSTOP");
      stopped = true;
      await sleep(200);
      assert.equal(await locks.tryAcquire(name), null, "held through a short pause");
      sendSignal(holder, "SIGCONT");
      stopped = false;
      await sleep(500);
      assert.equal(await locks.tryAcquire(name), null, "still held after it");
      assert.deepEqual(lines.filter((l) => l !== `held ${held}`), [], "no loss reported");

      // Paused past its lease: the server ends its session, a contender gets the lock.
      sendSignal(holder, "SIGSTOP");
      stopped = true;
      const contender = await locks.acquire(name, { timeout: 15_000 });
      assert.ok(contender.fence > held, `${contender.fence} > ${held}`);
      const fence = String(contender.fence);
      const wrote = await client.query(
        "UPDATE resource SET owner = 'contender', fence = $1::bigint " +
          "WHERE id = 1 AND fence < $1::bigint RETURNING id",
        [fence],
      );
      assert.equal(wrote.length, 1);
      await client.query("UPDATE unfenced SET owner = 'contender' WHERE id = 1");

      // It wakes up believing it holds the lock, and writes.
      writeFileSync(go, "");
      sendSignal(holder, "SIGCONT");
      stopped = false;
      await until(() => lines.some((l) => l.startsWith("release ")), "the holder's release");
      await exited(holder);
      assert.ok(lines.includes("compromised ECOMPROMISED"), lines.join("\n"));
      assert.ok(lines.includes("aborted"), "its lock.signal aborted");
      assert.ok(lines.includes("release ECOMPROMISED"), "its release reports the loss");
      assert.ok(lines.includes("fenced-write 0"), "the fence refused the stale write");
      const [resource] = await client.query("SELECT owner, fence::text FROM resource");
      assert.deepEqual(resource, { owner: "contender", fence });
      // Control: the same stale write without a fence lands over the contender's.
      assert.ok(lines.includes("unfenced-write 1"));
      const [unfenced] = await client.query("SELECT owner FROM unfenced");
      assert.equal(unfenced.owner, "holder");

      assert.equal(contender.signal.aborted, false, "the contender still holds its lock");
      await contender.release();
    } finally {
      if (stopped) sendSignal(holder, "SIGCONT");
      holder.kill("SIGKILL");
      await exited(holder);
      await client.end();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

stopTest(s);
