// A worker thread that takes the lock when told, and reports what it got.
import { parentPort, workerData } from "node:worker_threads";
import { type Lock, tryAcquire } from "../../mod.ts";

let lock: Lock | null = null;
parentPort!.on("message", (message: string) => {
  if (message === "try") {
    lock = tryAcquire(workerData.path as string);
    parentPort!.postMessage(lock === null ? "busy" : `held:${lock.backend}`);
  } else if (message === "release") {
    lock?.releaseSync();
    lock = null;
    parentPort!.postMessage("released");
  }
});
parentPort!.postMessage("ready");
