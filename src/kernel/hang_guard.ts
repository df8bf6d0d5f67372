/**
 * The first `flock` on a filesystem that may leave it unanswered (a hung NFS
 * server, a FUSE daemon that never replies) is made on a thread of its own,
 * within the caller's time: a hung filesystem is reported as a `LockError`,
 * not a process stuck in the kernel. Once a filesystem has answered, its
 * locks are taken inline as everywhere else (docs/architecture.md,
 * "Filesystems").
 *
 * @module
 */

import { dirname } from "node:path";
import {
  ANSWERED,
  ASKING,
  type FlockThread,
  startFlockThread,
  STARTING,
} from "../../ffi/flock_thread.ts";
import { posixTableHere } from "../../ffi/runtime.ts";
import { FLOCK_UNSUPPORTED, LockError } from "../errors.ts";
import { type Filesystem, filesystemOf } from "../filesystems.ts";
import { firstFlockLimit } from "../pace.ts";
import { abandonUnlockable, type KernelRequest, openDescriptor, type Opened } from "./engine.ts";

/** Directories on a filesystem that may hang whose `flock` answered in this process. */
const answered = new Set<string>();
/** Directories whose filesystem did not, with the error to repeat (no new thread per attempt). */
const hung = new Map<string, LockError>();

/** The last path found not to need the guard: repeated locks on one path skip the lookups. */
let lastUnguarded = "";

/** Whether the request's first lock must be guarded: a filesystem that may hang, not yet heard from. */
export function needsGuard(request: KernelRequest): boolean {
  const { binding, path } = request;
  if (path === lastUnguarded) return false;
  // Windows' handles are asked inline: its remote volumes have no flock to hang.
  if (binding.osDescriptors !== true && binding.backend !== "deno-native") return false;
  if (filesystemOf(path, binding).mayHang && !answered.has(dirname(path))) return true;
  lastUnguarded = path;
  return false;
}

function hungError(request: KernelRequest, filesystem: Filesystem, waited: number): LockError {
  return new LockError({
    code: "EIO",
    path: request.path,
    detail: `the ${filesystem.fsType} filesystem did not answer flock(2) within ${
      Math.round(waited)
    } ms (a hung mount?); one thread of this process stays blocked in the kernel until it answers or the mount is aborted, and locks on it fail at once until then`,
  });
}

interface Guarded {
  readonly opened: Opened;
  readonly directory: string;
  readonly thread: FlockThread;
  /** Whether the caller stopped waiting (timeout, abort): the thread's answer then closes the descriptor. */
  abandoned: boolean;
}

/** Opens the lock file and starts its `flock` (non-blocking) on a thread; `undefined` when there is nothing to ask. */
function begin(request: KernelRequest): Guarded | undefined {
  const directory = dirname(request.path);
  const known = hung.get(directory);
  if (known !== undefined) throw known;
  const table = posixTableHere();
  if (table === undefined) return undefined;
  const opened = openDescriptor(request);
  if (opened === undefined) return undefined;
  const c = request.binding.constants;
  const thread = startFlockThread(
    request.binding.osDescriptors === true
      ? {
        fd: opened.fd,
        operation: (request.shared ? c.LOCK_SH : c.LOCK_EX) | c.LOCK_NB,
        libraries: table.libraries,
        errnoSymbol: table.errnoLocation,
      }
      : { path: request.path, exclusive: !request.shared },
  );
  const guarded: Guarded = { opened, directory, thread, abandoned: false };
  // Whenever it answers, even long after the caller gave up, the filesystem is alive again.
  void thread.answered.then(() => {
    answered.add(directory);
    hung.delete(directory);
    if (guarded.abandoned) request.binding.close(opened.fd);
  });
  return guarded;
}

/**
 * What the thread's answer (0, `-errno`, or `undefined`: none within
 * `waited` ms) means: the filesystem answers, or is hung; the probe's
 * descriptor goes.
 */
function end(
  request: KernelRequest,
  guarded: Guarded,
  answer: number | undefined,
  waited: number,
): void {
  const { opened, directory } = guarded;
  if (answer === undefined) {
    const error = hungError(request, filesystemOf(request.path, request.binding), waited);
    hung.set(directory, error);
    // The descriptor stays with the stuck thread's flock, closed when (if) it answers.
    guarded.abandoned = true;
    throw error;
  }
  answered.add(directory);
  const name = answer === 0 ? "" : request.binding.errnoName(-answer);
  // A filesystem without flock: the attempts find out and fall back; a file this probe made goes.
  if (FLOCK_UNSUPPORTED.has(name)) {
    abandonUnlockable(request, opened);
  } else {
    request.binding.close(opened.fd); // a lock the probe took goes with it; the attempts take their own
  }
}

/** The thread did not even start: something is wrong with this process, not the filesystem. */
function notStarted(request: KernelRequest, guarded: Guarded): LockError {
  guarded.abandoned = true;
  return new LockError({
    code: "EAGAIN",
    path: request.path,
    detail: `a thread to ask the filesystem for its first lock did not start within ${
      THREAD_START_MAX_MS / 1000
    } s; try again`,
  });
}

/** How long a thread may take to start before the guard gives up (a process out of memory, threads). */
const THREAD_START_MAX_MS = 30_000;

/** Guards the first lock of a synchronous acquire: blocks the thread at most until the limit. */
export function guardSync(request: KernelRequest, deadline: number | undefined): void {
  const guarded = begin(request);
  if (guarded === undefined) return;
  const { state } = guarded.thread;
  if (Atomics.wait(state, 0, STARTING, THREAD_START_MAX_MS) === "timed-out") {
    throw notStarted(request, guarded);
  }
  const limit = firstFlockLimit(deadline);
  Atomics.wait(state, 0, ASKING, Number.isFinite(limit) ? limit : undefined);
  const answer = Atomics.load(state, 0) === ANSWERED ? -Atomics.load(state, 1) || 0 : undefined;
  end(request, guarded, answer, limit);
}

/** Guards the first lock of an asynchronous acquire, without blocking the event loop; an abort ends it at once. */
export async function guard(
  request: KernelRequest,
  deadline: number | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const guarded = begin(request);
  if (guarded === undefined) return;
  const { thread } = guarded;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    if (signal === undefined) return;
    onAbort = () => {
      guarded.abandoned = true;
      reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  const after = <T>(ms: number, value: T): Promise<T> =>
    new Promise((resolve) => {
      clearTimeout(timer);
      if (Number.isFinite(ms)) timer = setTimeout(() => resolve(value), ms);
    });
  try {
    const started = await Promise.race([
      thread.asking.then(() => true),
      after(THREAD_START_MAX_MS, false),
      aborted,
    ]);
    if (!started) throw notStarted(request, guarded);
    const limit = firstFlockLimit(deadline);
    const answer = await Promise.race([thread.answered, after(limit, undefined), aborted]);
    end(request, guarded, answer, limit);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
}
