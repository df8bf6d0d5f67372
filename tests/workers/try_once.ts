// One tryAcquire; prints the backend that took the lock, "busy", or the
// LockError code. argv: lockPath
import { LockError, tryAcquire } from "../../mod.ts";
import { args as argv } from "./args.ts";

try {
  const lock = tryAcquire(argv[0]);
  console.log(lock === null ? "busy" : lock.backend);
  lock?.releaseSync();
} catch (error) {
  console.log(error instanceof LockError ? error.code : String(error));
}
