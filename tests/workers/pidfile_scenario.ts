// One pidfile holder in a scenario the hardening tests stage. Prints "held"
// once it holds the lock (and "error <code>" if it fails), then acts.
// argv: lockPath action [flag...]
//   actions: hold     hold until killed
//            brief    hold 200 ms, release, exit
//            cycles=N N acquire/release cycles, then print "rss <bytes>" at 25% and at the end
//            try      one attempt: print "held", "busy" or "error <code>" and exit
//            release-emfile  hold, use up every descriptor, release: print "released" or
//                     "error <code>", and "compromised" if a compromise was reported
//            attempt  one acquireSync within timeout=<ms> (default 0): print "held" or
//                     "error <code> <message>" and exit
//            guard    print the name of the level-1 reclaim guard of what is at the path
//   flags:   pause=<ms>         pause between creating the lock file and writing the record
//            noverify           skip the check that the path still names the created file
//            die-after-remove   SIGKILL itself once a reclaim removed a stale file
//            nonamespace        write no PID namespace into the record
//            deno-listener      a Deno.addSignalListener("SIGINT") handler that keeps running
//            once-handler       a process.once("SIGINT") handler that cleans up for 300 ms, then exits
//            addremove          add and remove a SIGINT listener every cycle (what leaked)
//            timeout=<ms>       wait at most this long
//            stale=<ms>         staleMs
//   broken variants (src/pidfile/test_hooks.ts), each bringing back what a fix removed:
//            reclaim-non-records  reclaim an old file that is not a record
//            per-holding-guards   name guards after the stale holding (token or mtime)
//            unshortened-guards   never shorten a guard name to fit NAME_MAX
//            follow-links         read the lock file through a symlink at the path
//            naive-release        check the record on release by opening the path again
//            legacy-signals       add/remove the signal listeners per lock, in Deno too, and
//                                 remove the locks on a signal whatever other listeners there are
import { closeSync, openSync } from "node:fs";
import process from "node:process";
import { acquireSync, LockError, tryAcquire } from "../../mod.ts";
import { guardFor, pidfileTestHooks } from "../../src/pidfile/attempt.ts";
import { readLockFile } from "../../src/pidfile/judge.ts";
import { testHooks as livenessHooks } from "../../src/pidfile/liveness.ts";
import { args } from "./args.ts";

const [lockPath, action, ...flags] = args;
const flag = (name: string) => flags.find((f) => f === name || f.startsWith(`${name}=`));
const value = (name: string) => flag(name)?.split("=")[1];
const pause = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => Atomics.wait(pause, 0, 0, ms);
const PIDFILE = {
  backend: "pidfile" as const,
  timeout: Number(value("timeout") ?? 30_000),
  staleMs: Number(value("stale") ?? Infinity),
};

const pauseMs = value("pause");
if (pauseMs !== undefined) {
  pidfileTestHooks.afterCreate = () => {
    pidfileTestHooks.afterCreate = undefined;
    console.log("paused");
    sleepSync(Number(pauseMs));
    console.log("resumed");
  };
}
if (flag("noverify")) pidfileTestHooks.verifyCreated = false;
if (flag("die-after-remove")) {
  pidfileTestHooks.afterRemove = () => process.kill(process.pid, "SIGKILL");
}
if (flag("nonamespace")) livenessHooks.noNamespace = true;
if (flag("reclaim-non-records")) pidfileTestHooks.reclaimNonRecords = true;
if (flag("per-holding-guards")) pidfileTestHooks.guardNaming = "per-holding";
if (flag("unshortened-guards")) pidfileTestHooks.guardNaming = "unshortened";
if (flag("follow-links")) pidfileTestHooks.followLinks = true;
if (flag("naive-release")) pidfileTestHooks.naiveRelease = true;
if (flag("legacy-signals")) pidfileTestHooks.legacySignals = true;
if (flag("deno-listener")) {
  (globalThis as unknown as {
    Deno: { addSignalListener(signal: string, fn: () => void): void };
  }).Deno.addSignalListener("SIGINT", () => console.log("handled"));
}
if (flag("once-handler")) {
  process.once("SIGINT", () => {
    console.log("handling");
    setTimeout(() => {
      console.log("cleaned");
      process.exit(0);
    }, 300);
  });
}

function report(error: unknown): void {
  console.log(`error ${error instanceof LockError ? error.code : String(error)}`);
}

const cycles = action.startsWith("cycles=") ? action.slice("cycles=".length) : undefined;
if (action === "release-emfile") {
  const lock = acquireSync(lockPath, {
    ...PIDFILE,
    onCompromised: () => console.log("compromised"),
  });
  const filler: number[] = [];
  let full = "";
  try {
    for (;;) filler.push(openSync("/dev/null", "r"));
  } catch (error) {
    full = (error as { code?: string }).code ?? String(error);
  }
  let result: string;
  try {
    lock.releaseSync();
    result = "released";
  } catch (error) {
    result = `error ${error instanceof LockError ? error.code : String(error)}`;
  }
  for (const fd of filler) closeSync(fd);
  console.log(`descriptors ${full}`);
  console.log(result);
} else if (action === "attempt") {
  try {
    acquireSync(lockPath, { ...PIDFILE, timeout: Number(value("timeout") ?? 0) }).releaseSync();
    console.log("held");
  } catch (error) {
    console.log(`error ${error instanceof LockError ? `${error.code} ${error.message}` : error}`);
  }
} else if (action === "guard") {
  const found = readLockFile(lockPath);
  console.log(found === undefined ? "nothing" : guardFor(lockPath, 1, found));
} else if (action === "try") {
  try {
    const lock = tryAcquire(lockPath, PIDFILE);
    console.log(lock === null ? "busy" : "held");
    lock?.releaseSync();
  } catch (error) {
    report(error);
  }
} else if (cycles !== undefined) {
  const n = Number(cycles);
  const noop = () => {};
  for (let i = 1; i <= n; i++) {
    acquireSync(lockPath, PIDFILE).releaseSync();
    if (flag("addremove")) {
      process.on("SIGINT", noop);
      process.off("SIGINT", noop);
    }
    if (i === n / 4 || i === n) console.log(`rss ${process.memoryUsage().rss}`);
  }
} else {
  try {
    const lock = acquireSync(lockPath, PIDFILE);
    console.log("held");
    if (action === "brief") {
      sleepSync(200);
      lock.releaseSync();
      console.log("released");
    } else {
      setInterval(() => {}, 1000);
    }
  } catch (error) {
    report(error);
  }
}
