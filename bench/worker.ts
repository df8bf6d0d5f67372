// One benchmark measurement in this process's runtime; prints one line of JSON last.
//   cycle <backend> sync|async <lock> <n>           uncontended cycles (after a warm-up): ns each
//   trylock <lock> <n>                              Deno's own FsFile lock loop: ns each
//   peer proper-lockfile|lockfile <lock> <n>        npm peers (Node): ns each
//   count <backend> async|sync <lock> <counter> <go> <ms>
//       contended: from the start time in <go> (CLOCK_MONOTONIC ms) for <ms>, lock, increment
//       a 16-digit counter with pread/pwrite (as bench/reference.c), release; prints the count
//   handoff async|sync|blocking <lock> <stamp> <go> <n> <holdus> <pauseus>
//       n times: lock, note the latency from the last release by another process (the stamp:
//       pid and CLOCK_MONOTONIC ms), hold, stamp, release, pause; prints the latencies (ms)
//   wait <backend> <lock>                           waits for the lock, then exits
//   hold <lock> <release>                           holds the lock until <release> exists
//   scale <backend> <dir> <count>                   many held locks: ns and heap bytes per lock
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import process from "node:process";
import { acquire, acquireSync, type BackendRequest, type Lock, tryAcquire } from "../mod.ts";
import { monotonicMs } from "./clock.ts";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const [command, ...args] = argv;
const pause = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => Atomics.wait(pause, 0, 0, ms);
const scope = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };

/** ns per iteration of `body(n)`, after a warm-up of half as many. */
async function measure(n: number, body: (n: number) => Promise<void> | void): Promise<number> {
  await body(Math.max(1, Math.floor(n / 2))); // JIT tiers settle
  const start = performance.now();
  await body(n);
  return ((performance.now() - start) * 1e6) / n;
}

/** Says "ready", then waits until the start time the runner wrote into `go`. */
async function startTime(go: string): Promise<number> {
  console.log("ready");
  for (;;) {
    const text = existsSync(go) ? readFileSync(go, "utf8") : "";
    if (text.trim() !== "") {
      const at = Number(text);
      while (monotonicMs() < at) await new Promise((resolve) => setTimeout(resolve, 0));
      return at;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const backendOf = (name: string) => name as BackendRequest;

/** A full collection where the runtime offers one (run.mjs passes the flags). */
function collectGarbage(): void {
  if (scope.Bun !== undefined) scope.Bun.gc(true);
  else scope.gc?.();
}

/** The JavaScript heap in use: Bun's own count (its process.memoryUsage().heapUsed never moves). */
function heapUsed(): number {
  if (scope.Bun !== undefined) {
    const jsc = createRequire(import.meta.url)("bun:jsc") as { heapStats(): { heapSize: number } };
    return jsc.heapStats().heapSize;
  }
  return process.memoryUsage().heapUsed;
}

switch (command) {
  case "cycle": {
    const [backend, mode, lock, n] = args;
    const options = { backend: backendOf(backend) };
    const ns = mode === "sync"
      ? await measure(Number(n), (k) => {
        for (let i = 0; i < k; i++) tryAcquire(lock, options)!.releaseSync();
      })
      : await measure(Number(n), async (k) => {
        for (let i = 0; i < k; i++) await (await acquire(lock, options)).release();
      });
    console.log(JSON.stringify({ ns }));
    break;
  }
  case "trylock": {
    const [lock, n] = args;
    const deno = (globalThis as unknown as { Deno: typeof Deno }).Deno;
    const ns = await measure(Number(n), (k) => {
      for (let i = 0; i < k; i++) {
        const file = deno.openSync(lock, { read: true, write: true, create: true });
        if (!file.tryLockSync(true)) throw new Error("busy");
        deno.lstatSync(lock);
        file.unlockSync();
        file.close();
      }
    });
    console.log(JSON.stringify({ ns }));
    break;
  }
  case "peer": {
    const [name, lock, n] = args;
    if (name === "proper-lockfile") {
      const { default: lockfile } = await import("proper-lockfile") as unknown as {
        default: { lockSync(path: string, options: { stale: number }): () => void };
      };
      writeFileSync(lock, "");
      const ns = await measure(Number(n), (k) => {
        for (let i = 0; i < k; i++) lockfile.lockSync(lock, { stale: 60_000 })();
      });
      console.log(JSON.stringify({ ns }));
    } else {
      const { default: lockfile } = await import("lockfile");
      const ns = await measure(Number(n), (k) => {
        for (let i = 0; i < k; i++) {
          lockfile.lockSync(lock);
          lockfile.unlockSync(lock);
        }
      });
      console.log(JSON.stringify({ ns }));
    }
    break;
  }
  case "count": {
    const [backend, mode, lock, counter, go, ms] = args;
    const options = { backend: backendOf(backend), timeout: 60_000 };
    // A fixed-width counter read and written in place, as the C reference does.
    const fd = openSync(counter, "r+");
    const buffer = new Uint8Array(16);
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    const end = await startTime(go) + Number(ms);
    let count = 0;
    while (monotonicMs() < end) {
      const held = mode === "sync" ? acquireSync(lock, options) : await acquire(lock, options);
      readSync(fd, buffer, 0, 16, 0);
      const next = String(Number(decoder.decode(buffer)) + 1).padStart(16, "0");
      writeSync(fd, encoder.encode(next), 0, 16, 0);
      held.releaseSync();
      count++;
    }
    closeSync(fd);
    console.log(JSON.stringify({ count }));
    break;
  }
  case "handoff": {
    const [mode, lock, stamp, go, n, holdUs, pauseUs] = args;
    const options = mode === "blocking" ? {} : { timeout: 60_000 };
    await startTime(go);
    const latencies: number[] = [];
    for (let i = 0; i < Number(n); i++) {
      const held: Lock = mode === "async"
        ? await acquire(lock, options)
        : acquireSync(lock, options);
      const got = monotonicMs();
      const [pid, released] = (existsSync(stamp) ? readFileSync(stamp, "utf8") : "").split(" ");
      if (released !== undefined && Number(pid) !== process.pid) {
        latencies.push(got - Number(released));
      }
      sleepSync(Number(holdUs) / 1000); // the work done under the lock
      writeFileSync(stamp, `${process.pid} ${monotonicMs()}`);
      held.releaseSync();
      if (mode === "async") {
        await new Promise((resolve) => setTimeout(resolve, Number(pauseUs) / 1000));
      } else sleepSync(Number(pauseUs) / 1000);
    }
    console.log(JSON.stringify({ latencies }));
    break;
  }
  case "wait": {
    const [backend, lock] = args;
    console.log("waiting");
    (await acquire(lock, { backend: backendOf(backend) })).releaseSync();
    console.log("{}");
    break;
  }
  case "hold": {
    const [lock, release] = args;
    const held = acquireSync(lock);
    console.log("held");
    while (!existsSync(release)) await new Promise((resolve) => setTimeout(resolve, 10));
    held.releaseSync();
    break;
  }
  case "scale": {
    // Time per acquisition while holding `count` distinct locks (repeated until
    // at least 10,000 acquisitions), and heap per held lock.
    const [backend, dir, count] = args;
    const options = { backend: backendOf(backend) };
    const paths = Array.from({ length: Number(count) }, (_, i) => join(dir, `s${i}.lock`));
    const repeats = Math.max(1, Math.ceil(10_000 / paths.length));
    for (const lock of paths.map((path) => tryAcquire(path, options)!)) lock.releaseSync(); // warm-up; creates the files
    let heapPerLock = 0;
    const start = performance.now();
    for (let r = 0; r < repeats; r++) {
      if (r === 0) collectGarbage();
      const heapBefore = r === 0 ? heapUsed() : 0;
      const held = paths.map((path) => tryAcquire(path, options)!);
      if (r === 0) heapPerLock = (heapUsed() - heapBefore) / held.length;
      for (const lock of held) lock.releaseSync();
    }
    const ns = ((performance.now() - start) * 1e6) / (repeats * paths.length);
    console.log(JSON.stringify({ ns, heapPerLock: paths.length >= 100 ? heapPerLock : null }));
    break;
  }
  default:
    console.error(`unknown command ${command}`);
    process.exit(64);
}
