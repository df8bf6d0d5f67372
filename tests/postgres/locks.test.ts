// @lockkit/filelock/postgres in one process, against a real PostgreSQL that
// this file starts: the lock object, waiting in the server (timeout, abort:
// nothing left behind), shared locks, fences, the heartbeat, a server restart
// under a holder, and the refusal behind a transaction-pooling proxy. In Bun,
// each test runs with Bun.sql as well.
import assert from "node:assert/strict";
import {
  LockError,
  LockTimeoutError,
  type PostgresClient,
  type PostgresLock,
  postgresLocks,
} from "../../src/postgres/mod.ts";
import {
  advisoryLocks,
  CLIENTS,
  connect,
  pgTest,
  sessions,
  sleep,
  stopTest,
  suite,
  until,
  waiters,
} from "./helpers.ts";

const s = await suite("postgres lock tests");

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<LockError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof LockError, `expected a LockError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

/** Nothing of ours is left in the server: no advisory lock, no waiter, no session in a transaction. */
async function nothingLeft(): Promise<void> {
  assert.deepEqual(await advisoryLocks(s.spy), []);
  assert.equal(await waiters(s.spy), 0);
  const busy = (await sessions(s.spy)).filter((session) => session.state !== "idle");
  assert.deepEqual(busy, [], "every connection is back in its pool, idle");
}

/**
 * `sql` as a transaction-pooling proxy (PgBouncer in transaction mode) shows
 * it: once a transaction's COMMIT has gone out, `SELECT pg_backend_pid()` in
 * it is answered by another connection of the pool, another server session.
 * With `switchAfterCommit` false, every statement goes to the transaction's
 * own connection: the same wrapper, no switch (the control).
 */
function poolingProxy(sql: PostgresClient, switchAfterCommit: boolean): PostgresClient {
  return {
    unsafe: (query, params) => sql.unsafe(query, params),
    begin: (fn) =>
      sql.begin((tx) => {
        let committed = false;
        return fn({
          unsafe(query, params) {
            if (switchAfterCommit && committed && query.startsWith("SELECT pg_backend_pid()")) {
              return sql.unsafe(query, params);
            }
            if (/^COMMIT\b/.test(query)) committed = true;
            return tx.unsafe(query, params);
          },
        });
      }),
  };
}

for (const kind of CLIENTS) {
  const test = (name: string, fn: (locks: ReturnType<typeof postgresLocks>) => Promise<void>) =>
    pgTest(s, `${kind}: ${name}`, async () => {
      const client = connect(kind, s.url, 6);
      try {
        await fn(postgresLocks(client.sql, { leaseMs: 1000 }));
        await nothingLeft();
      } finally {
        await client.end();
      }
    });

  test("a lock: name, backend, fence, signal; release is idempotent", async (locks) => {
    const lock = await locks.acquire(`shape-${kind}`);
    assert.equal(lock.path, `shape-${kind}`);
    assert.equal(lock.backend, "postgres");
    assert.equal(lock.shared, false);
    assert.equal(lock.released, false);
    assert.equal(typeof lock.fence, "bigint");
    assert.ok(lock.fence > 0n);
    assert.equal(lock.signal.aborted, false);
    // No synchronous release: `using` and releaseSync are not offered at all.
    assert.equal(Symbol.dispose in lock, false);
    assert.equal("releaseSync" in lock, false);
    const held = await advisoryLocks(s.spy);
    assert.equal(held.length, 1);
    assert.equal(held[0].mode, "ExclusiveLock");
    await lock.release();
    assert.equal(lock.released, true);
    await lock.release();
    assert.deepEqual(await advisoryLocks(s.spy), []);
    assert.equal(lock.signal.aborted, false, "a release is not a loss");
  });

  test("await using releases at the end of the scope", async (locks) => {
    let kept: PostgresLock | undefined;
    {
      await using lock = await locks.acquire(`scope-${kind}`);
      kept = lock;
      assert.equal((await advisoryLocks(s.spy)).length, 1);
    }
    assert.equal(kept.released, true);
    assert.deepEqual(await advisoryLocks(s.spy), []);
  });

  test("tryAcquire: null while another session holds the lock", async (locks) => {
    const name = `try-${kind}`;
    const first = await locks.tryAcquire(name);
    assert.ok(first);
    assert.equal(await locks.tryAcquire(name), null);
    assert.equal(await locks.tryAcquire(name, { timeout: 5_000 }), null, "timeout is ignored");
    await first.release();
    const second = await locks.tryAcquire(name);
    assert.ok(second);
    assert.ok(second.fence > first.fence);
    await second.release();
  });

  test("fences increase with every holder of a name and are kept per name", async (locks) => {
    const fences: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      await locks.withLock(`fence-a-${kind}`, (lock) => {
        fences.push(lock.fence);
      });
    }
    for (let i = 1; i < fences.length; i++) assert.ok(fences[i] > fences[i - 1]);
    const other = await locks.acquire(`fence-b-${kind}`);
    assert.equal(other.fence, 1n, "another name counts on its own");
    await other.release();
  });

  test("a timeout ends the wait in the server and names the holder", async (locks) => {
    const name = `timeout-${kind}`;
    const holder = await locks.acquire(name);
    const started = performance.now();
    const error = await rejectsWithCode(locks.acquire(name, { timeout: 300 }), "ETIMEDOUT");
    const waited = performance.now() - started;
    assert.ok(error instanceof LockTimeoutError);
    assert.ok(waited >= 300 * 0.9, `waited ${waited} ms for a 300 ms timeout`);
    assert.match(error.message, /timed out after 300 ms waiting for the exclusive lock/);
    assert.match(error.message, /held by PostgreSQL session \d+/);
    // Nothing waits any more, and the waiter's connection is back, idle.
    assert.equal(await waiters(s.spy), 0);
    assert.equal((await advisoryLocks(s.spy)).filter((l) => !l.granted).length, 0);
    assert.equal((await sessions(s.spy)).filter((x) => x.state !== "idle").length, 1);
    await rejectsWithCode(locks.acquire(name, { timeout: 0 }), "ETIMEDOUT");
    await holder.release();
  });

  test("an abort ends the wait in the server and rejects with signal.reason", async (locks) => {
    const name = `abort-${kind}`;
    const holder = await locks.acquire(name);
    const controller = new AbortController();
    const waiting = locks.acquire(name, { signal: controller.signal });
    await until(async () => (await waiters(s.spy)) === 1, "the waiter to wait in the server");
    const reason = new Error("stop waiting");
    controller.abort(reason);
    await assert.rejects(waiting, (e: unknown) => e === reason);
    assert.equal(await waiters(s.spy), 0, "no waiter left in the server");
    assert.equal((await sessions(s.spy)).filter((x) => x.state !== "idle").length, 1);
    // Already aborted: rejected before anything is sent.
    await assert.rejects(locks.acquire(name, { signal: controller.signal }), (e) => e === reason);
    await holder.release();
  });

  test("a waiter gets the lock when the holder releases it, with a higher fence", async (locks) => {
    const name = `handoff-${kind}`;
    const holder = await locks.acquire(name);
    let got: PostgresLock | undefined;
    const waiting = locks.acquire(name, { timeout: 10_000 }).then((lock) => (got = lock));
    await until(async () => (await waiters(s.spy)) === 1, "the waiter to wait in the server");
    assert.equal(got, undefined);
    await holder.release();
    const next = await waiting;
    assert.ok(next.fence > holder.fence);
    await next.release();
  });

  test("shared locks coexist and exclude an exclusive one", async (locks) => {
    const name = `shared-${kind}`;
    const a = await locks.acquire(name, { shared: true });
    const b = await locks.acquire(name, { shared: true });
    assert.equal(a.shared, true);
    assert.notEqual(a.fence, b.fence);
    assert.equal(await locks.tryAcquire(name), null);
    const writer = locks.acquire(name, { timeout: 10_000 });
    await until(async () => (await waiters(s.spy)) === 1, "the writer to wait");
    await a.release();
    assert.equal(await waiters(s.spy), 1, "one reader still holds it");
    await b.release();
    const w = await writer;
    assert.ok(w.fence > a.fence && w.fence > b.fence);
    assert.equal(await locks.tryAcquire(name, { shared: true }), null);
    await w.release();
  });

  test("a timeout or an abort also ends a wait for a connection of the pool", async () => {
    const client = connect(kind, s.url, 1);
    try {
      const locks = postgresLocks(client.sql, { leaseMs: 1000 });
      const held = await locks.acquire(`pool-a-${kind}`); // the pool's only connection
      const error = await rejectsWithCode(
        locks.acquire(`pool-b-${kind}`, { timeout: 50 }),
        "ETIMEDOUT",
      );
      assert.match(error.message, /waiting for a connection of the pool/);
      const controller = new AbortController();
      const waiting = locks.acquire(`pool-b-${kind}`, { signal: controller.signal });
      await sleep(50);
      controller.abort(new Error("enough"));
      await assert.rejects(waiting, /enough/);
      // A timeout too long for a timer (30 days) waits like no timeout at all.
      const patient = locks.acquire(`pool-c-${kind}`, { timeout: 30 * 86_400_000 });
      await sleep(50);
      await held.release();
      await (await patient).release();
      // The connection went back to the pool through the abandoned transactions.
      const next = await locks.acquire(`pool-b-${kind}`, { timeout: 5_000 });
      await next.release();
    } finally {
      await client.end();
    }
  });

  pgTest(s, `${kind}: behind a transaction-pooling proxy: EUNSUPPORTED, nothing left`, async () => {
    const client = connect(kind, s.url, 4);
    try {
      // Control: the same wrapper without the switch takes and releases the lock.
      const direct = postgresLocks(poolingProxy(client.sql, false), { leaseMs: 1000 });
      const name = `proxy-${kind}`;
      const held = await direct.acquire(name, { timeout: 5_000 });
      assert.equal((await advisoryLocks(s.spy)).length, 1);
      await held.release();
      const tried = await direct.tryAcquire(name);
      assert.ok(tried);
      await tried.release();
      await nothingLeft();
      // Another session answers after the COMMIT: refused, for a wait and a try.
      const proxied = postgresLocks(poolingProxy(client.sql, true), { leaseMs: 1000 });
      const refused = async (taking: Promise<unknown>): Promise<void> => {
        const error = await rejectsWithCode(taking, "EUNSUPPORTED");
        assert.match(error.message, /transaction-pooling proxy/);
        await nothingLeft();
      };
      await refused(proxied.acquire(name, { timeout: 5_000 }));
      await refused(proxied.tryAcquire(name));
      // The name is free again: the refused sessions took nothing with them.
      const after = await direct.tryAcquire(name);
      assert.ok(after);
      assert.ok(after.fence > tried.fence);
      await after.release();
      await nothingLeft();
    } finally {
      await client.end();
    }
  });

  test("withLock returns the result, and releases when fn throws", async (locks) => {
    const name = `with-${kind}`;
    assert.equal(await locks.withLock(name, (lock) => lock.fence > 0n), true);
    const boom = new Error("boom");
    await assert.rejects(locks.withLock(name, () => Promise.reject(boom)), (e) => e === boom);
    assert.deepEqual(await advisoryLocks(s.spy), []);
  });

  test("a holder idle for longer than its lease keeps the lock (heartbeat)", async (locks) => {
    const name = `lease-${kind}`;
    const lost: LockError[] = [];
    const lock = await locks.acquire(name, { onCompromised: (e) => lost.push(e) });
    await sleep(2_500); // 2.5 leases without a statement of ours
    assert.deepEqual(lost, []);
    assert.equal(lock.signal.aborted, false);
    assert.equal(await locks.tryAcquire(name), null);
    await lock.release();
  });

  test("a server restart under a holder is reported as a loss", async (locks) => {
    const name = `restart-${kind}`;
    const lost: LockError[] = [];
    const lock = await locks.acquire(name, { onCompromised: (e) => lost.push(e) });
    const waiting = locks.acquire(name, { timeout: 30_000 });
    await until(async () => (await waiters(s.spy)) === 1, "the waiter to wait in the server");
    s.server!.restart();
    // The waiter's session ended too: its acquire fails, it does not get the lock.
    await rejectsWithCode(waiting, "ECONNRESET");
    await until(() => lock.signal.aborted, "lock.signal to abort", 10_000);
    assert.equal(lost.length, 1);
    assert.equal(lost[0].code, "ECOMPROMISED");
    assert.equal(lock.signal.reason, lost[0]);
    const error = await rejectsWithCode(lock.release(), "ECOMPROMISED");
    assert.equal(error, lost[0], "release reports the loss");
    assert.equal(lock.released, true);
    // The fence survived the restart (committed). Bun.sql hands out its
    // connections that died with the server, one failure each (nothing is
    // taken on them), before it connects anew; the postgres package reconnects.
    let next: PostgresLock | undefined;
    for (let tries = 0; next === undefined; tries++) {
      next = await locks.acquire(name, { timeout: 10_000 }).catch((error) => {
        if (kind !== "bunsql" || tries > 6 || (error as LockError).code !== "ECONNRESET") {
          throw error;
        }
        return undefined;
      });
    }
    assert.ok(next.fence > lock.fence, `${next.fence} > ${lock.fence}`);
    await next.release();
    assert.equal(lost.length, 1);
  });
}

pgTest(s, "bad arguments", async () => {
  const client = connect("porsager", s.url, 1);
  try {
    assert.throws(
      () => postgresLocks({} as unknown as Parameters<typeof postgresLocks>[0]),
      TypeError,
    );
    assert.throws(() => postgresLocks(client.sql, { leaseMs: 10 }), RangeError);
    assert.throws(() => postgresLocks(client.sql, { fenceTable: "a.b.c" }), RangeError);
    const locks = postgresLocks(client.sql);
    await rejectsWithCode(locks.acquire(""), "EINVAL");
    await rejectsWithCode(locks.acquire("a\0b"), "EINVAL");
    await assert.rejects(locks.acquire(42 as unknown as string), TypeError);
    await assert.rejects(locks.acquire("x", { timeout: -1 }), RangeError);
  } finally {
    await client.end();
  }
});

pgTest(s, "the fence table can be named; a missing privilege is EACCES", async () => {
  const admin = connect("porsager", s.url, 2);
  await admin.query("CREATE SCHEMA IF NOT EXISTS app");
  await admin.query("CREATE ROLE limited LOGIN");
  const limited = connect("porsager", s.url.replace("postgres@", "limited@"), 2);
  try {
    const locks = postgresLocks(admin.sql, { fenceTable: "app.fences" });
    await locks.withLock("named-table", () => {});
    const rows = await admin.query("SELECT name, fence::text FROM app.fences");
    assert.deepEqual(rows, [{ name: "named-table", fence: "1" }]);
    const denied = postgresLocks(limited.sql, { fenceTable: "app.fences" });
    await rejectsWithCode(denied.acquire("named-table"), "EACCES");
    await admin.query("GRANT USAGE ON SCHEMA app TO limited");
    await rejectsWithCode(denied.acquire("named-table"), "EACCES");
    assert.deepEqual(await advisoryLocks(s.spy), [], "a failed fence leaves no lock behind");
  } finally {
    await limited.end();
    await admin.end();
  }
});

stopTest(s);
