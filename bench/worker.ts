// One benchmark measurement in this process's runtime; prints one line of JSON.
//   cycle <backend> sync|async <lock> <n> <rounds>   uncontended cycles: median ns per cycle
//   trylock <lock> <n> <rounds>                      Deno's own FsFile.tryLock loop (reference)
//   peer proper-lockfile|lockfile <lock> <n> <rounds>   npm peers (Node)
//   count <backend> <lock> <counter> <n> <go>       contended increments; seconds taken
//   handoff <backend> <lock> <stamp> <n> <go>       hand-off latencies (ms) seen by this process
//   wait <backend> <lock>                           waits for the lock, then exits
//   hold <lock> <release>                           holds the lock until <release> exists
//   scale <backend> <dir> <count>                   many held locks: ns and heap bytes per lock
//   cold <backend> <lock> | noop                    cold start: first lock held, or nothing
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { acquire, acquireSync, type BackendRequest, type Lock, tryAcquire } from "../mod.ts";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const [command, ...args] = argv;
const pause = new Int32Array(new SharedArrayBuffer(4));
const sleepSync = (ms: number) => Atomics.wait(pause, 0, 0, ms);
const wallMs = () => performance.timeOrigin + performance.now();

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function rounds(n: number, count: number, body: (n: number) => Promise<void> | void) {
  await body(Math.max(1, Math.floor(n / 10))); // warm-up
  const results: number[] = [];
  for (let r = 0; r < count; r++) {
    const start = performance.now();
    await body(n);
    results.push(((performance.now() - start) * 1e6) / n);
  }
  return median(results);
}

function waitForGo(go: string): void {
  console.log("ready");
  while (!existsSync(go)) sleepSync(1);
}

const backendOf = (name: string) => name as BackendRequest;

/** A full collection where the runtime offers one (run.mjs passes the flags). */
function collectGarbage(): void {
  const scope = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (scope.Bun !== undefined) scope.Bun.gc(true);
  else scope.gc?.();
}

switch (command) {
  case "noop":
    console.log("{}");
    break;
  case "cold": {
    const [backend, lock] = args;
    tryAcquire(lock, { backend: backendOf(backend) })?.releaseSync();
    console.log("{}");
    break;
  }
  case "cycle": {
    const [backend, mode, lock, n, count] = args;
    const options = { backend: backendOf(backend) };
    const ns = mode === "sync"
      ? await rounds(Number(n), Number(count), (k) => {
        for (let i = 0; i < k; i++) tryAcquire(lock, options)!.releaseSync();
      })
      : await rounds(Number(n), Number(count), async (k) => {
        for (let i = 0; i < k; i++) await (await acquire(lock, options)).release();
      });
    console.log(JSON.stringify({ ns }));
    break;
  }
  case "trylock": {
    const [lock, n, count] = args;
    const deno = (globalThis as unknown as { Deno: typeof Deno }).Deno;
    const ns = await rounds(Number(n), Number(count), (k) => {
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
    const [name, lock, n, count] = args;
    if (name === "proper-lockfile") {
      const { default: lockfile } = await import("proper-lockfile");
      writeFileSync(lock, "");
      const ns = await rounds(Number(n), Number(count), (k) => {
        for (let i = 0; i < k; i++) lockfile.lockSync(lock, { stale: 60_000 })();
      });
      console.log(JSON.stringify({ ns }));
    } else {
      const { default: lockfile } = await import("lockfile");
      const ns = await rounds(Number(n), Number(count), (k) => {
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
    const [backend, lock, counter, n, go] = args;
    const options = { backend: backendOf(backend) };
    // A fixed-width counter read and written in place, as the C reference does:
    // the cost measured is the lock's, not the filesystem's truncate-and-rewrite.
    const fd = openSync(counter, "r+");
    const buffer = new Uint8Array(16);
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    waitForGo(go);
    const start = performance.now();
    for (let i = 0; i < Number(n); i++) {
      const held = acquireSync(lock, options);
      readSync(fd, buffer, 0, 16, 0);
      const next = String(Number(decoder.decode(buffer)) + 1).padStart(16, "0");
      writeSync(fd, encoder.encode(next), 0, 16, 0);
      held.releaseSync();
    }
    closeSync(fd);
    console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000 }));
    break;
  }
  case "handoff": {
    const [backend, lock, stamp, n, go] = args;
    const options = { backend: backendOf(backend) };
    waitForGo(go);
    const latencies: number[] = [];
    for (let i = 0; i < Number(n); i++) {
      const held: Lock = await acquire(lock, options);
      const got = wallMs();
      const text = readFileSync(stamp, "utf8");
      if (text !== "") latencies.push(got - Number(text));
      sleepSync(2); // the work done under the lock
      writeFileSync(stamp, String(wallMs()));
      await held.release();
      // Let the others have it: a releaser re-taking the lock at once is no hand-off.
      await new Promise((resolve) => setTimeout(resolve, 5));
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
      const heapBefore = r === 0 ? process.memoryUsage().heapUsed : 0;
      const held = paths.map((path) => tryAcquire(path, options)!);
      if (r === 0) heapPerLock = (process.memoryUsage().heapUsed - heapBefore) / held.length;
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
