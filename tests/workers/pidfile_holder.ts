// Takes a pidfile lock, says "held", then:
//   wait     stays alive (to be killed)
//   end      lets the script end without releasing (exit cleanup must remove the file)
//   handler  stays alive with its own SIGTERM listener (which we must not pre-empt)
// argv: lockPath wait|end|handler
import process from "node:process";
import { acquireSync } from "../../mod.ts";
import { args as argv } from "./args.ts";

const [lockPath, action] = argv;
if (action === "handler") process.on("SIGTERM", () => console.log("handled"));
acquireSync(lockPath, { backend: "pidfile" });
console.log("held");
if (action !== "end") setInterval(() => {}, 1000);
