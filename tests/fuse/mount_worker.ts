// For flockfs.test.ts: mounts flockfs and dies without unmounting, to show that nothing is
// left behind. Usage: mount_worker.ts <mode> exit|wait. Prints one JSON line once mounted
// (in hang mode with the PID of a flock(1) stuck in the filesystem), then either exits at
// once (the exit hook must clean up) or waits to be killed (flockfs must clean up itself).
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type FlockMode, inFuseRequest, mountFlockfs } from "./fuse.ts";

const [mode, end] = process.argv.slice(2) as [FlockMode, "exit" | "wait"];
const mount = await mountFlockfs(mode);
const file = join(mount.mountpoint, "f");
writeFileSync(file, "");
let stuck: number | undefined;
if (mode === "hang") {
  const flock = spawn("flock", ["-n", file, "true"], { stdio: "ignore", detached: true });
  flock.unref();
  stuck = flock.pid!;
  const until = performance.now() + 10_000;
  while (!inFuseRequest(stuck) && performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
console.log(JSON.stringify({ mountpoint: mount.mountpoint, pid: mount.pid, stuck }));
if (end === "exit") process.exit(0);
setInterval(() => {}, 60_000);
