// Waits for locks in the ways the kernel wake-up tests need.
// argv: lockPath mode ...
//   overlap <inside> <n> lock|nolock [go=<file>]
//       n rounds in each of two concurrent async loops and one loop of acquireSync with a
//       timeout; inside the lock, <inside> is created with O_EXCL (it exists: "OVERLAP",
//       exit 1) and removed; prints "done".
//   once <timeoutMs> [nofallback]
//       one acquire; prints "held event" or "held poll" (how its wait ended) and exits.
//       nofallback: no poll at all once waiting, only wake-ups (what the poll guards against).
//   abandon
//       three waiters (two timeouts, one abort) on a held lock; prints "abandoned" once all
//       rejected, then ends its script: the process must exit by itself.
//   exit [unsafe]
//       one short wait (taken or timed out), then the script ends while other processes'
//       releases go on. unsafe: O_ASYNC is left on and the SIGIO listener removed, as a
//       runtime's exit does, for 1.5 s (what the library must never leave a process in).
import { closeSync, openSync, unlinkSync } from "node:fs";
import { acquire, acquireSync, LockTimeoutError } from "../../mod.ts";
import { inotifyTestHooks } from "../../src/kernel/inotify.ts";
import { waitTestHooks } from "../../src/wait.ts";
import { args as argv } from "./args.ts";

const [lockPath, mode, ...rest] = argv;
const pause = new Int32Array(new SharedArrayBuffer(4));

async function waitForGo(go: string | undefined): Promise<void> {
  if (go === undefined) return;
  console.log("ready");
  const { existsSync } = await import("node:fs");
  while (!existsSync(go)) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** The critical section: nobody else may be inside. */
function inside(marker: string): void {
  let fd: number;
  try {
    fd = openSync(marker, "wx");
  } catch {
    console.log("OVERLAP");
    process.exit(1);
  }
  closeSync(fd);
  Atomics.wait(pause, 0, 0, 1);
  unlinkSync(marker);
}

if (mode === "overlap") {
  const [marker, n, lockOrNot, goFlag] = rest;
  const locked = lockOrNot === "lock";
  await waitForGo(goFlag?.slice(3));
  const rounds = Number(n);
  const asyncLoop = async (): Promise<void> => {
    for (let i = 0; i < rounds; i++) {
      if (!locked) {
        inside(marker);
        await new Promise((resolve) => setTimeout(resolve, 0));
        continue;
      }
      const lock = await acquire(lockPath, { timeout: 60_000 });
      inside(marker);
      await lock.release();
    }
  };
  const syncLoop = async (): Promise<void> => {
    for (let i = 0; i < rounds; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (!locked) {
        inside(marker);
        continue;
      }
      const lock = acquireSync(lockPath, { timeout: 60_000 });
      inside(marker);
      lock.releaseSync();
    }
  };
  await Promise.all([asyncLoop(), asyncLoop(), syncLoop()]);
  console.log("done");
} else if (mode === "once") {
  const [timeout, flag] = rest;
  if (flag === "nofallback") waitTestHooks.fallbackPollMs = Infinity;
  console.log("waiting");
  const lock = await acquire(lockPath, { timeout: Number(timeout) });
  console.log(waitTestHooks.heldAfterEvent > 0 ? "held event" : "held poll");
  lock.releaseSync();
} else if (mode === "abandon") {
  const controller = new AbortController();
  const waits = [
    acquire(lockPath, { timeout: 200 }),
    acquire(lockPath, { timeout: 400 }),
    acquire(lockPath, { signal: controller.signal }),
  ];
  setTimeout(() => controller.abort(new Error("abandoned")), 300);
  const results = await Promise.allSettled(waits);
  const reasons = results.map((r) =>
    r.status === "rejected"
      ? r.reason instanceof LockTimeoutError ? "timeout" : String(r.reason.message)
      : "held?"
  );
  console.log(`abandoned ${reasons.join(" ")}`);
} else if (mode === "exit") {
  const unsafe = rest[0] === "unsafe";
  inotifyTestHooks.keepSignalling = unsafe;
  await acquire(lockPath, { timeout: 80 }).then((lock) => lock.releaseSync(), () => {});
  if (unsafe) {
    // Let the listener read what is queued (an unread event absorbs identical later ones,
    // which then signal nothing), and remove it at once.
    process.emit("SIGIO" as "exit", 0);
    process.removeAllListeners("SIGIO");
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
  console.log("exiting");
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(64);
}
