// Waits that could never end (issue 13): a synchronous wait for a lock this
// thread holds, and a synchronous wait given a signal that cannot fire.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { acquire, acquireSync, LockError, LockTimeoutError, tryAcquire, withLock } from "../mod.ts";
import { command, finish, type Flavour, inTemp, runtimeName, start } from "./helpers.ts";

const OWN: Flavour = runtimeName === "deno" ? "deno-ffi" : runtimeName as Flavour;

async function staged(dir: string, scenario: string): Promise<string> {
  const child = start(command(OWN, "sync_wait.ts", [join(dir, "s.lock"), scenario]));
  const watchdog = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const result = await finish(child);
  clearTimeout(watchdog);
  assert.equal(result.signal, null, `it ended by itself: ${result.stderr}`);
  return result.stdout.trim();
}

test(
  `${runtimeName}: acquisition: acquireSync on a lock this thread holds fails at once with EDEADLK`,
  inTemp(async (dir) => {
    assert.equal(await staged(dir, "self"), "EDEADLK");
    const path = join(dir, "d.lock");
    const held = tryAcquire(path)!;
    assert.throws(
      () => acquireSync(path, { timeout: 60_000 }),
      (e: unknown) =>
        e instanceof LockError && e.code === "EDEADLK" && /not reentrant/.test(e.message),
    );
    assert.throws(() => acquireSync(path, { shared: true }), /EDEADLK/);
    held.releaseSync();
    // Shared locks do not wait for each other, nor for themselves.
    const reader = tryAcquire(path, { shared: true })!;
    const second = acquireSync(path, { shared: true });
    assert.throws(() => acquireSync(path), /EDEADLK/, "an exclusive one would wait for both");
    second.releaseSync();
    reader.releaseSync();
    acquireSync(path).releaseSync();
  }),
);

test(
  `${runtimeName}: acquisition: a nested withLock on the same path says it waits for this process`,
  inTemp(async (dir) => {
    const path = join(dir, "n.lock");
    await withLock(path, async () => {
      await assert.rejects(
        withLock(path, () => "never", { timeout: 100 }),
        (e: unknown) =>
          e instanceof LockTimeoutError &&
          new RegExp(`held by this process \\(pid ${process.pid}\\)`).test(e.message),
      );
    });
  }),
);

test(
  `${runtimeName}: acquisition: acquireSync refuses a signal it could never notice, and names timeout`,
  inTemp(async (dir) => {
    const path = join(dir, "s.lock");
    const held = tryAcquire(path)!;
    try {
      assert.match(await staged(dir, "signal"), /^TypeError: .*options\.timeout/);
    } finally {
      held.releaseSync();
    }
    const reason = new Error("already");
    assert.throws(
      () => acquireSync(path, { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
    assert.throws(
      () => acquireSync(path, { signal: new AbortController().signal }),
      (e: unknown) => e instanceof TypeError && /timeout/.test(e.message),
      "refused even when the lock is free: it would not be honoured",
    );
    // The asynchronous wait still takes any signal.
    const controller = new AbortController();
    (await acquire(path, { signal: controller.signal })).releaseSync();
  }),
);
