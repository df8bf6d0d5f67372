// Takes the lock, says "held", then: waits forever (crash test), or spawns a
// long-running child and releases ("child"), or spawns a child and exits ("orphan").
// argv: lockPath wait|child|orphan
import { spawn } from "node:child_process";
import { acquireSync } from "../../mod.ts";
import { args as argv } from "./args.ts";

const [lockPath, action] = argv;
const lock = acquireSync(lockPath);
if (action === "wait") {
  console.log("held");
  setInterval(() => {}, 1000);
} else {
  const child = spawn("sleep", ["30"], { stdio: "ignore", detached: true });
  child.unref();
  console.log(`held child=${child.pid}`);
  if (action === "child") {
    lock.releaseSync();
    console.log("released");
    setInterval(() => {}, 1000);
  } else {
    process.exit(0);
  }
}
