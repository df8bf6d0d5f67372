// A synchronous wait that could never end, staged in a child so that a
// regression hangs only the child: prints the error's code/name, or "held".
// argv: lockPath self|signal
//       lockPath aliases|aliases-pidfile <path>...
//   self    this thread holds the lock, then waits for it with acquireSync
//   signal  another process holds it; wait with an AbortSignal.timeout(100)
//   aliases this thread holds the lock (pidfile: with the pidfile backend), then
//           waits with acquireSync on each other path in turn: one line each
import { acquireSync, LockError, tryAcquire } from "../../mod.ts";
import { args } from "./args.ts";

const [lockPath, scenario, ...others] = args;
if (scenario.startsWith("aliases")) {
  const options = scenario === "aliases-pidfile" ? { backend: "pidfile" as const } : {};
  const held = tryAcquire(lockPath, options);
  console.log(held === null ? "busy" : "holding");
  for (const other of others) {
    try {
      acquireSync(other, options).releaseSync();
      console.log("held");
    } catch (error) {
      console.log(error instanceof LockError ? error.code : String(error));
    }
  }
  held?.releaseSync();
} else {
  staged();
}

function staged(): void {
  try {
    if (scenario === "self") {
      tryAcquire(lockPath);
      acquireSync(lockPath);
    } else {
      acquireSync(lockPath, { signal: AbortSignal.timeout(100) });
    }
    console.log("held");
  } catch (error) {
    console.log(
      error instanceof LockError
        ? error.code
        : `${(error as Error).name}: ${(error as Error).message}`,
    );
  }
}
