/**
 * One `flock(fd, operation)` on a worker thread of this process, through the
 * runtime's own FFI (descriptors are process-wide), or Deno's own file lock
 * where Deno has no FFI: for a filesystem whose
 * `flock` may never answer (a hung NFS or FUSE mount), so that the caller's
 * thread never waits in it longer than it chooses to. A thread stuck in the
 * kernel stays there until the filesystem answers or its mount is aborted.
 *
 * @module
 */

import type * as NodeModule from "node:module";
import type * as WorkerThreads from "node:worker_threads";
import { builtin } from "./builtins.ts";
import { runtime } from "./runtime.ts";

/** `state[0]` while the thread starts (loading its FFI binding). */
export const STARTING = 0;
/** `state[0]` once the thread called `flock`: from here on, the filesystem has the turn. */
export const ASKING = 1;
/** `state[0]` once `flock` returned; `state[1]` is then 0 or errno. */
export const ANSWERED = 2;

/** A `flock` under way on its own thread. */
export interface FlockThread {
  /** `[phase, errno]`: `STARTING`, `ASKING`, `ANSWERED` (each notified), and the answer's errno. */
  readonly state: Int32Array;
  /** Resolves once the thread called `flock`. */
  readonly asking: Promise<void>;
  /** Resolves with 0 or `-errno` once `flock` returned (never, if it never does). */
  readonly answered: Promise<number>;
}

// The worker's code, the same in the three runtimes: each binds flock and
// errno its own way. It writes its phase and the answer to shared memory (for
// a waiter blocked in Atomics.wait) and posts them (for one on the event
// loop). The waiter counts the filesystem's time from ASKING: the thread's
// start-up is this process's time, not the filesystem's.
const CODE = `
const { parentPort, workerData } = require("node:worker_threads");
const { fd, operation, runtime, libraries, errnoSymbol, koffi, state, path, exclusive } = workerData;
// Deno without FFI: the file opened again by path (an FsFile cannot cross threads).
function bindNative() {
  return () => {
    let file;
    try {
      try {
        file = Deno.openSync(path, { read: true, write: true });
      } catch {
        file = Deno.openSync(path, { read: true });
      }
      file.tryLockSync(exclusive);
      return [0, 0];
    } catch (error) {
      const number = /\\(os error (\\d+)\\)$/.exec(String(error && error.message));
      return [-1, number ? Number(number[1]) : 5];
    } finally {
      try { file && file.close(); } catch {}
    }
  };
}
function bind() {
  if (path !== undefined) return bindNative();
  for (const library of libraries) {
    try {
      if (runtime === "node") {
        const k = require(koffi);
        const lib = k.load(library);
        const flock = lib.func("int flock(int, int)");
        return () => [flock(fd, operation), k.errno()];
      }
      if (runtime === "bun") {
        const { dlopen, toArrayBuffer } = require("bun:ffi");
        const s = dlopen(library, {
          flock: { args: ["i32", "i32"], returns: "i32" },
          [errnoSymbol]: { args: [], returns: "ptr" },
        }).symbols;
        return () => {
          const result = s.flock(fd, operation);
          return [result, new Int32Array(toArrayBuffer(s[errnoSymbol](), 0, 4))[0]];
        };
      }
      const s = Deno.dlopen(library, {
        flock: { parameters: ["i32", "i32"], result: "i32" },
        errno: { name: errnoSymbol, parameters: [], result: "pointer" },
      }).symbols;
      return () => {
        const result = s.flock(fd, operation);
        return [result, new Deno.UnsafePointerView(s.errno()).getInt32(0)];
      };
    } catch {}
  }
  return () => [-1, 38];
}
const flock = bind();
Atomics.store(state, 0, 1);
Atomics.notify(state, 0);
parentPort.postMessage("asking");
const [result, errno] = flock();
const answer = result === 0 ? 0 : errno;
Atomics.store(state, 1, answer);
Atomics.store(state, 0, 2);
Atomics.notify(state, 0);
parentPort.postMessage(answer === 0 ? 0 : -answer);
`;

/**
 * What the thread asks: `flock(fd, operation)` through libc (`libraries` and
 * `errnoSymbol` are those of the POSIX table the binding was made from), or,
 * for Deno's own file API, a `tryLockSync` on the file at `path`.
 */
export type FlockQuestion =
  | {
    readonly fd: number;
    readonly operation: number;
    readonly libraries: readonly string[];
    readonly errnoSymbol: string;
  }
  | { readonly path: string; readonly exclusive: boolean };

/** Starts the question on a new worker thread, which does not keep the process alive. */
export function startFlockThread(question: FlockQuestion): FlockThread {
  const state = new Int32Array(new SharedArrayBuffer(8));
  // koffi, for the worker's require, found where the binding found it (beside this module).
  const koffi = runtime === "node"
    ? builtin<typeof NodeModule>("node:module").createRequire(import.meta.url).resolve("koffi")
    : "";
  const { Worker } = builtin<typeof WorkerThreads>("node:worker_threads");
  const worker = new Worker(CODE, {
    eval: true,
    workerData: { ...question, runtime, koffi, state },
  });
  worker.unref();
  let onAsking: () => void = () => {};
  const asking = new Promise<void>((resolve) => onAsking = resolve);
  const answered = new Promise<number>((resolve) => {
    worker.on("message", (message: "asking" | number) => {
      if (message === "asking") {
        onAsking();
        return;
      }
      resolve(message);
      void worker.terminate();
    });
  });
  return { state, asking, answered };
}
