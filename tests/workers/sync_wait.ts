// A synchronous wait that could never end, staged in a child so that a
// regression hangs only the child: prints the error's code/name, or "held".
// argv: lockPath self|signal
//   self    this thread holds the lock, then waits for it with acquireSync
//   signal  another process holds it; wait with an AbortSignal.timeout(100)
import { acquireSync, LockError, tryAcquire } from "../../mod.ts";
import { args } from "./args.ts";

const [lockPath, scenario] = args;
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
