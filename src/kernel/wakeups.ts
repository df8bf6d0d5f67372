/**
 * Kernel wake-ups for waiters (Linux): an inotify watch per (process, lock
 * file) tells a waiter when a descriptor opened for writing on the lock file
 * was closed, which is how a holder lets go. Waiters of one path in this
 * process queue in order and only the head tries again; a wake-up is a hint
 * (the waiter always tries, and a fallback poll bounds a lost one)
 * (docs/architecture.md, "Waiting").
 *
 * @module
 */

import { type KernelEvents, LINUX_EVENTS as L, loadKernelEvents } from "../../ffi/kernel_events.ts";
import type { EncodedPath } from "../../ffi/types.ts";
import { type Armed, armed, AsyncInotify, inotifyTestHooks, SyncInotify } from "./inotify.ts";

export type { Armed } from "./inotify.ts";

/** Why a sleep ended. */
export type Woken = "event" | "timer";

/** The waiters of one lock file in this process, and its watch. */
class PathQueue {
  readonly path: string;
  readonly encoded: EncodedPath;
  /** Called when each becomes the head, in order. */
  readonly waiters: (() => void)[] = [];
  wd = -1;
  #wakeSleeper: (() => void) | undefined;
  #wokenMeanwhile = false;

  constructor(path: string, encoded: EncodedPath) {
    this.path = path;
    this.encoded = encoded;
  }

  /** Ends the head's sleep; or, if it is awake, its next one. */
  wake(): void {
    if (this.#wakeSleeper !== undefined) this.#wakeSleeper();
    else this.#wokenMeanwhile = true;
  }

  /** Forgets a wake-up that came before the head's first attempt. */
  fresh(): void {
    this.#wokenMeanwhile = false;
  }

  /**
   * Sleeps until a wake-up (unless not `wakeable`), `ms`, or an abort (which
   * rejects with its reason).
   */
  sleep(ms: number, signal: AbortSignal | undefined, wakeable = true): Promise<Woken> {
    // A listener added to an aborted signal never runs.
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (wakeable && this.#wokenMeanwhile) {
      this.#wokenMeanwhile = false;
      return Promise.resolve("event");
    }
    return new Promise((resolve, reject) => {
      const end = (why: Woken | undefined): void => {
        clearTimeout(timer);
        this.#wakeSleeper = undefined;
        signal?.removeEventListener("abort", onAbort);
        if (why === undefined) reject(signal!.reason);
        else resolve(why);
      };
      const onAbort = (): void => end(undefined);
      // No timer for an endless sleep (a timer cannot take Infinity: it would fire at once).
      const timer = Number.isFinite(ms) ? setTimeout(() => end("timer"), ms) : undefined;
      if (wakeable) this.#wakeSleeper = () => end("event");
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

let events: KernelEvents | null | undefined;

/** This runtime's inotify calls, or `null` where there are none (loaded once). */
function kernelEvents(): KernelEvents | null {
  if (events === undefined) events = loadKernelEvents() ?? null;
  return events;
}

const queues = new Map<string, PathQueue>();
/** Each watch descriptor's queues (two paths may name one file). */
const byWd = new Map<number, Set<PathQueue>>();
/** Queues with waiters: the async descriptor listens while there are any. */
let busyQueues = 0;
let inotify: AsyncInotify | undefined;

function onEvent(wd: number, mask: number): void {
  if ((mask & L.IN_Q_OVERFLOW) !== 0) {
    for (const queue of queues.values()) queue.wake();
    return;
  }
  const named = byWd.get(wd);
  if (named === undefined) return;
  const gone = (mask & L.IN_IGNORED) !== 0;
  for (const queue of named) {
    if (gone) queue.wd = -1;
    queue.wake();
  }
  if (gone) byWd.delete(wd);
}

function onClosed(): void {
  inotify = undefined;
  byWd.clear();
  for (const [path, queue] of queues) {
    queue.wd = -1;
    if (queue.waiters.length === 0) queues.delete(path);
  }
}

/** The process's async inotify descriptor, opened on first need. */
function asyncInotify(): AsyncInotify | undefined {
  if (inotify !== undefined) return inotify;
  const calls = kernelEvents();
  if (calls === null) return undefined;
  const fd = calls.inotifyInit(L.IN_NONBLOCK | L.IN_CLOEXEC);
  if (fd < 0) return undefined;
  try {
    inotify = new AsyncInotify(calls, fd, onEvent, onClosed);
  } catch {
    calls.close(fd);
    return undefined;
  }
  if (busyQueues > 0) inotify.listen();
  return inotify;
}

/** Drops `queue`'s watch (removed in the kernel unless another path shares its file). */
function forgetWatch(queue: PathQueue): void {
  const named = byWd.get(queue.wd);
  if (named !== undefined) {
    named.delete(queue);
    if (named.size === 0) {
      byWd.delete(queue.wd);
      inotify?.removeWatch(queue.wd);
    }
  }
  queue.wd = -1;
}

/** Sets the watch of `queue` on what its path names now. */
function arm(queue: PathQueue): Armed {
  const source = asyncInotify();
  if (source === undefined) return "unwatched";
  const wd = source.addWatch(queue.encoded);
  if (wd >= 0 && wd !== queue.wd) {
    forgetWatch(queue); // the path names another file now
    queue.wd = wd;
    let named = byWd.get(wd);
    if (named === undefined) byWd.set(wd, named = new Set());
    named.add(queue);
  }
  return armed(wd);
}

/** Whether async waiters can be woken by the kernel here (Linux, FFI, a thread that gets signals). */
export function asyncWakeupsAvailable(): boolean {
  return kernelEvents() !== null;
}

/** Whether this process has waiters queued for `path` (a newcomer then queues behind them). */
export function waitersFor(path: string | undefined): boolean {
  return busyQueues > 0 && path !== undefined && (queues.get(path)?.waiters.length ?? 0) > 0;
}

/** A waiter's place at the head of its path's queue. */
export interface Place {
  /** Watches what the path names now: before each attempt, so that no release goes unseen. */
  arm(): Armed;
  /** Sleeps until a wake-up (unless not `wakeable`), `ms`, or an abort (rejects with its reason). */
  sleep(ms: number, signal: AbortSignal | undefined, wakeable?: boolean): Promise<Woken>;
  /** Leaves the queue: the next waiter becomes the head. */
  leave(): void;
}

/**
 * Queues for the lock file at `path` and resolves once this waiter is the
 * head of this process's queue for it; rejects with the abort's reason, or
 * with `timedOut()` at `deadline` (a `performance.now()` time).
 */
export function enterQueue(
  path: string,
  encoded: EncodedPath,
  deadline: number,
  signal: AbortSignal | undefined,
  timedOut: () => Error,
): Promise<Place> {
  let queue = queues.get(path);
  if (queue === undefined) queues.set(path, queue = new PathQueue(path, encoded));
  const q = queue;
  if (q.waiters.length === 0 && busyQueues++ === 0) inotify?.listen();
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (error: unknown): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) {
        q.fresh();
        resolve(placeIn(q));
        return;
      }
      const at = q.waiters.indexOf(turn);
      if (at >= 0) q.waiters.splice(at, 1);
      if (at === 0) nextTurn(q);
      reject(error);
    };
    const turn = (): void => finish(undefined);
    const onAbort = (): void => finish(signal!.reason);
    q.waiters.push(turn);
    if (q.waiters.length === 1) {
      finish(undefined);
      return;
    }
    if (deadline !== Infinity) {
      timer = setTimeout(() => finish(timedOut()), Math.max(0, deadline - performance.now()));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Gives the turn to the next waiter of `queue`; the last one leaving idles the descriptor. */
function nextTurn(queue: PathQueue): void {
  const head = queue.waiters[0];
  if (head !== undefined) {
    head();
    return;
  }
  // Nobody waits for this file any more: its watch and entry go (a process that waits on
  // ever new paths must not gather watches; removing one is cheap, and so is the next add).
  queues.delete(queue.path);
  if (!inotifyTestHooks.keepSignalling) forgetWatch(queue);
  if (--busyQueues === 0) inotify?.idle();
}

function placeIn(queue: PathQueue): Place {
  let left = false;
  return {
    arm: () => arm(queue),
    sleep: (ms, signal, wakeable) => queue.sleep(ms, signal, wakeable),
    leave: () => {
      if (left) return;
      left = true;
      queue.waiters.shift();
      nextTurn(queue);
    },
  };
}

const markTimes = new BigInt64Array(4);
const markBytes = new Uint8Array(markTimes.buffer);

/**
 * Marks the file open as `fd` as waited for since `since` (µs of wall
 * clock): its access time set to the later of `since` and just after
 * `current` (its access time now), so that every mark is new and the oldest
 * waiter's start shows; its content and modification time stay. Setting a
 * time is for the file's owner (and root): another user's waits are not
 * marked, and fairness is then up to the kernel (`./fairness.ts`).
 */
export function markWaiting(fd: number, current: number, since: number): void {
  const calls = kernelEvents();
  if (calls === null) return;
  const at = Math.max(since, current + 1);
  markTimes[0] = BigInt(Math.floor(at / 1e6));
  markTimes[1] = BigInt(Math.floor(at % 1e6) * 1000);
  markTimes[2] = 0n;
  markTimes[3] = BigInt(L.UTIME_OMIT);
  calls.futimens(fd, markBytes);
}

let syncInotify: SyncInotify | undefined;

/** A synchronous wait's watch of one lock file: `undefined` where there are no wake-ups. */
export interface SyncWatch {
  arm(): Armed;
  /** Blocks until a wake-up (`"event"`) or `ms` (`"timer"`). */
  sleep(ms: number): Woken;
  /** Ends the wait. */
  end(): void;
}

/** The watch for one `acquireSync` with a timeout, on this thread's own descriptor. */
export function syncWatch(encoded: EncodedPath): SyncWatch | undefined {
  if (syncInotify === undefined || syncInotify.closed) {
    const calls = kernelEvents();
    if (calls === null) return undefined;
    const fd = calls.inotifyInit(L.IN_NONBLOCK | L.IN_CLOEXEC);
    if (fd < 0) return undefined;
    syncInotify = new SyncInotify(calls, fd);
  }
  const source = syncInotify;
  source.begin();
  return {
    arm: () => source.arm(encoded),
    sleep: (ms) => source.sleep(ms) ? "event" : "timer",
    end: () => source.end(),
  };
}
