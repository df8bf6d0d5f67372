// One attempt; prints the backend that took the lock, "busy", or the
// LockError code (with the message after it when "message" is given).
// argv: lockPath [wait=<ms>] [noflock=<errno>] [foreign] [message] [blocking-open]
//   wait=<ms>   acquire with that timeout instead of tryAcquire
//   foreign     pass allowForeignOwner: true
//   blocking-open  a broken variant: the binding's O_NONBLOCK taken away, so that
//               opens may wait (what a fifo at the lock path did before the fix)
import { acquire, LockError, tryAcquire } from "../../mod.ts";
import { testHooks } from "../../src/kernel/engine.ts";
import { resolveBackend } from "../../src/probe.ts";
import { args as argv } from "./args.ts";

const [lockPath, ...flags] = argv;
const value = (name: string) => flags.find((f) => f.startsWith(`${name}=`))?.split("=")[1];
const noFlock = value("noflock");
if (noFlock !== undefined) testHooks.flockError = noFlock;
if (flags.includes("blocking-open")) {
  const constants = resolveBackend(undefined).binding?.constants as { O_NONBLOCK: number };
  constants.O_NONBLOCK = 0;
}
const wait = value("wait");
const options = { allowForeignOwner: flags.includes("foreign") };
try {
  const lock = wait === undefined
    ? tryAcquire(lockPath, options)
    : await acquire(lockPath, { ...options, timeout: Number(wait) });
  console.log(lock === null ? "busy" : lock.backend);
  lock?.releaseSync();
} catch (error) {
  console.log(
    error instanceof LockError
      ? `${error.code}${flags.includes("message") ? ` ${error.message}` : ""}`
      : String(error),
  );
}
