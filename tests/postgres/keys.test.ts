// The pure pieces of the PostgreSQL backend: lock names → advisory keys, the
// columns pg_locks shows them in, option validation, and the one statement
// whose text carries computed values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { keyColumns, lockKey } from "../../src/postgres/keys.ts";
import { lockName, lockOptions, locksOptions } from "../../src/postgres/options.ts";
import {
  fenceAndSessionLock,
  unlockStatement,
  waitSettings,
  waitStatement,
} from "../../src/postgres/statements.ts";
import { LockError } from "../../src/errors.ts";
import { runtimeName } from "../helpers.ts";

test(`${runtimeName}: postgres keys: stable, signed 64-bit, distinct for distinct names`, () => {
  assert.equal(lockKey("reports"), lockKey("reports"));
  const keys = new Set<bigint>();
  for (let i = 0; i < 20_000; i++) {
    const key = lockKey(`job-${i}`);
    assert.equal(BigInt.asIntN(64, key), key);
    keys.add(key);
  }
  assert.equal(keys.size, 20_000);
  assert.notEqual(lockKey("a"), lockKey("A"));
  assert.notEqual(lockKey("é"), lockKey("e\u0301"), "names are compared as written");
  // Pinned: a change of the mapping would split the lock between versions.
  assert.equal(lockKey("reports"), 4899757123324629228n);
});

test(`${runtimeName}: postgres keys: the pg_locks columns of a key`, () => {
  assert.deepEqual(keyColumns(-5n), { classid: "4294967295", objid: "4294967291" });
  assert.deepEqual(keyColumns(1n), { classid: "0", objid: "1" });
  assert.deepEqual(keyColumns(-(2n ** 63n)), { classid: "2147483648", objid: "0" });
  assert.deepEqual(keyColumns(2n ** 32n + 7n), { classid: "1", objid: "7" });
});

test(`${runtimeName}: postgres options: defaults and errors`, () => {
  assert.deepEqual(locksOptions(undefined), { leaseMs: 30_000, fenceTable: '"lockkit_fences"' });
  assert.deepEqual(locksOptions({ leaseMs: 1000, fenceTable: 'ops."fen ces"' }), {
    leaseMs: 1000,
    fenceTable: '"ops"."""fen ces"""',
  });
  assert.throws(() => locksOptions({ leaseMs: 99 }), RangeError);
  assert.throws(() => locksOptions({ leaseMs: 1.5e3 + 0.5 }), RangeError);
  assert.throws(() => locksOptions({ leaseMs: 2 ** 31 }), RangeError);
  assert.throws(() => locksOptions({ leaseMs: "1000" }), TypeError);
  assert.throws(() => locksOptions({ fenceTable: "" }), RangeError);
  assert.throws(() => locksOptions({ fenceTable: "a..b" }), RangeError);
  assert.throws(() => locksOptions(null), TypeError);
  assert.equal(lockName("x"), "x");
  assert.throws(() => lockName(""), (e: unknown) => e instanceof LockError && e.code === "EINVAL");
  assert.throws(() => lockName(1), TypeError);
  assert.deepEqual(lockOptions(undefined), {
    shared: false,
    timeout: Infinity,
    signal: undefined,
    onCompromised: undefined,
  });
  assert.throws(() => lockOptions({ timeout: NaN }), RangeError);
  assert.throws(() => lockOptions({ shared: 1 }), TypeError);
  assert.throws(() => lockOptions({ signal: {} }), TypeError);
  assert.throws(() => lockOptions({ onCompromised: true }), TypeError);
});

test(`${runtimeName}: postgres statements: only integers are written into the text`, () => {
  assert.equal(
    waitSettings(1234.2, 30_000),
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCAL statement_timeout = 0; " +
      "SET LOCAL lock_timeout = 1235; SET LOCAL idle_in_transaction_session_timeout = 30000",
  );
  assert.match(waitSettings(0, 1000), /lock_timeout = 0;/);
  assert.match(waitSettings(2 ** 40, 1000), /lock_timeout = 2147483647;/);
  assert.match(
    waitStatement(-(2n ** 63n), true, "try"),
    /pg_try_advisory_xact_lock_shared\('-9223372036854775808'::bigint\)/,
  );
  assert.match(
    fenceAndSessionLock('"t"', -5n, false),
    /^WITH f AS \(INSERT INTO "t" .* pg_try_advisory_lock\('-5'::bigint\) AS held FROM f$/,
  );
  assert.match(unlockStatement(7n, true), /pg_advisory_unlock_shared\('7'::bigint\)/);
});
