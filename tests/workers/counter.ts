// Increments a counter file N times, under the lock unless told not to.
// argv: lockPath counterPath iterations lock|nolock [remove] [noidentity] [slowopen] [pidfile]
//       [fallback] [go=<file>]
// fallback: the lock path is on a filesystem without flock (tests/fuse), where
// the automatic backend must fall back to pidfile; any other backend is an error.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { acquire, acquireSync } from "../../mod.ts";
import { testHooks } from "../../src/kernel/engine.ts";
import { args as argv } from "./args.ts";

const [lockPath, counterPath, iterationsText, mode, ...flags] = argv;
const iterations = Number(iterationsText);
const removeOnRelease = flags.includes("remove");
const backend = flags.includes("pidfile") ? "pidfile" as const : undefined;
const pause = new Int32Array(new SharedArrayBuffer(4));
if (flags.includes("noidentity")) testHooks.verifyIdentity = false;
if (flags.includes("slowopen")) testHooks.afterOpen = () => Atomics.wait(pause, 0, 0, 1);
const fallback = flags.includes("fallback");

function check(lock: { backend: string }): void {
  if (fallback && lock.backend !== "pidfile") {
    throw new Error(`expected the pidfile fallback, got ${lock.backend}`);
  }
}

// Start together with the other workers (tests/helpers.ts runTogether); an
// argument, not the environment, which Deno may not read.
const go = flags.find((flag) => flag.startsWith("go="))?.slice(3);
if (go !== undefined) {
  console.log("ready");
  while (!existsSync(go)) Atomics.wait(pause, 0, 0, 1);
}

function increment(): void {
  const value = Number(readFileSync(counterPath, "utf8") || "0");
  Atomics.wait(pause, 0, 0, 1); // widen the read-modify-write window
  writeFileSync(counterPath, String(value + 1));
}

for (let i = 0; i < iterations; i++) {
  if (mode === "nolock") {
    increment();
  } else if (i % 2 === 0) {
    const lock = await acquire(lockPath, { removeOnRelease, backend });
    check(lock);
    increment();
    await lock.release();
  } else {
    using lock = acquireSync(lockPath, { removeOnRelease, backend });
    check(lock);
    increment();
  }
}
