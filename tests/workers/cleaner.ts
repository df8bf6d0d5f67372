// Repeatedly takes the lock, checks it is on the file at the path, and unlinks
// the file: a cooperative cleaner racing holders that use removeOnRelease.
// argv: lockPath stopFile
import { existsSync } from "node:fs";
import { acquireSync } from "../../mod.ts";
import { args as argv } from "./args.ts";

const [lockPath, stopFile] = argv;
const pause = new Int32Array(new SharedArrayBuffer(4));
while (!existsSync(stopFile)) {
  const lock = acquireSync(lockPath, { removeOnRelease: true });
  lock.releaseSync();
  Atomics.wait(pause, 0, 0, 1);
}
