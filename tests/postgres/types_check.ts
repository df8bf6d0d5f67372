// Type-level checks of the PostgreSQL lock, run by `deno check` (.ci/run): a
// network round trip cannot be synchronous, so a synchronous release and
// `using` are type errors, not runtime surprises; the `postgres` client fits
// `postgresLocks` as it is. Nothing here runs.
import postgres from "postgres";
import { type PostgresLock, postgresLocks } from "../../src/postgres/mod.ts";

export async function typeChecks(lock: PostgresLock): Promise<bigint> {
  // @ts-expect-error: no synchronous release
  lock.releaseSync();
  {
    // @ts-expect-error: not Disposable, only AsyncDisposable
    using held = lock;
    void held;
  }
  {
    await using held = lock;
    void held;
  }
  // @ts-expect-error: read-only
  lock.fence = 1n;
  const locks = postgresLocks(postgres(), { leaseMs: 10_000 });
  const maybe: PostgresLock | null = await locks.tryAcquire("name");
  void maybe;
  return await locks.withLock("name", (l) => l.fence, { shared: true, timeout: 10 });
}
