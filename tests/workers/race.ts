// Reclaim race: for each round, waits for `<dir>/go-<round>`, makes one
// attempt on the (stale) pidfile lock and says "won <round>" or "busy <round>";
// a winner holds until `<dir>/release-<round>` appears.
// argv: lockPath dir rounds [naive] [slow]
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tryAcquire } from "../../mod.ts";
import { pidfileTestHooks } from "../../src/pidfile/attempt.ts";
import { args as argv } from "./args.ts";

const [lockPath, dir, roundsText, ...flags] = argv;
const pause = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(pause, 0, 0, ms);
pidfileTestHooks.naiveReclaim = flags.includes("naive");
// Everyone has judged the record stale before anyone acts on it.
if (flags.includes("slow")) pidfileTestHooks.beforeReclaim = () => sleep(30);

function waitForFile(path: string): void {
  while (!existsSync(path)) sleep(1);
}

console.log("ready");
for (let round = 0; round < Number(roundsText); round++) {
  waitForFile(join(dir, `go-${round}`));
  const lock = tryAcquire(lockPath, { backend: "pidfile" });
  console.log(`${lock === null ? "busy" : "won"} ${round}`);
  if (lock !== null) {
    waitForFile(join(dir, `release-${round}`));
    lock.releaseSync();
    console.log(`released ${round}`);
  }
}
