/**
 * The flow of one acquire, for every entry point of the API: validate the
 * path and options, resolve the backend, decide kernel or pidfile for this
 * path, then hand the attempts to the wait loop (`src/wait.ts`). A path whose
 * filesystem turns out to have no `flock` moves to pidfile here, within the
 * same deadline (docs/architecture.md, "Layers").
 *
 * @module
 */

import type { Binding, EncodedPath } from "../ffi/types.ts";
import { accessTimeOf, newIdentity } from "../ffi/types.ts";
import { type Attempt, BUSY, held, REPLACED } from "./attempt.ts";
import { dirname } from "node:path";
import { missingDenoFlags } from "../ffi/runtime.ts";
import { LockError, type LockTimeoutError, withHint } from "./errors.ts";
import { filesystemOf } from "./filesystems.ts";
import {
  attemptKernel,
  heldByKernelUser,
  type KernelRequest,
  lockedIdentity,
  openAnnouncer,
} from "./kernel/engine.ts";
import { wallMicroseconds, yieldsTo } from "./kernel/fairness.ts";
import { markWaiting } from "./kernel/wakeups.ts";
import { guard, guardSync, needsGuard } from "./kernel/hang_guard.ts";
import { kernelTimedOut } from "./kernel/holders.ts";
import { KernelLock } from "./kernel/lock.ts";
import { attemptPidfile, type PidfileRequest, pidfileTimedOut } from "./pidfile/attempt.ts";
import { PidfileLock } from "./pidfile/lock.ts";
import { lockOptions, lockPath, type ValidOptions } from "./options.ts";
import { resolveBackend, type ResolvedBackend } from "./probe.ts";
import type { Lock } from "./types.ts";
import type { Attempter, WakeupFile } from "./wait.ts";
import { warnOnce } from "./warnings.ts";

const CHOOSE_KNOWINGLY =
  'choose it knowingly with backend: "pidfile" or FILELOCK_BACKEND=pidfile, or set FILELOCK_WARNINGS=off, to silence this warning';

/**
 * Paths whose filesystem refused `flock` in this process, with the backend
 * chosen automatically: they stay in pidfile mode, so that this process never
 * takes both kinds of lock on one path.
 */
const flockRefused = new Set<string>();

/**
 * The one decision of which kind of lock `path` takes in this process:
 * pidfile when the backend resolves to no kernel binding, or when the path's
 * filesystem refused `flock` and the backend may fall back; else kernel.
 * Used by every acquire and by `inspect`.
 */
export function lockKindFor(path: string, backend: ResolvedBackend): "kernel" | "pidfile" {
  if (backend.binding === undefined) return "pidfile";
  return backend.mayFallBack && flockRefused.has(path) ? "pidfile" : "kernel";
}

/** Scratch for the `fstat` of a file a lost race marks. */
const markIdentity = newIdentity();

// Repeated locks on one path skip re-encoding it.
let lastPath = "";
let lastBinding: Binding | undefined;
let lastEncoded: EncodedPath = "";

function encoded(binding: Binding, path: string): EncodedPath {
  if (path !== lastPath || binding !== lastBinding) {
    lastEncoded = binding.encodePath(path);
    lastPath = path;
    lastBinding = binding;
  }
  return lastEncoded;
}

function pidfileRequest(
  path: string,
  options: ValidOptions,
  heldByKernel: (() => boolean) | undefined,
): PidfileRequest {
  if (options.shared) {
    throw new LockError({
      code: "EUNSUPPORTED",
      path,
      detail: heldByKernel !== undefined
        ? "this filesystem does not support flock(2), and the pidfile backend used instead takes exclusive locks only"
        : "the pidfile backend takes exclusive locks only; a shared lock needs a kernel backend (ffi or native)",
    });
  }
  return {
    path,
    mode: options.mode,
    staleMs: options.staleMs,
    onCompromised: options.onCompromised,
    heldByKernelUser: heldByKernel,
    lastHolder: undefined,
    lastReason: "",
  };
}

/**
 * `removeOnRelease` is safe only where the identity check after locking sees
 * every replacement: not on a network filesystem, whose attribute cache may
 * hide another host's (docs/architecture.md, "Filesystems").
 */
function refuseRemovalOnNetwork(path: string, binding: Binding): void {
  const filesystem = filesystemOf(path, binding);
  if (!filesystem.network) return;
  throw new LockError({
    code: "EINVAL",
    path,
    detail:
      `removeOnRelease is refused on a network filesystem (${filesystem.fsType}): a process on another host could lock the removed file while one here locks its replacement; lock without removeOnRelease`,
  });
}

/**
 * The attempts of one acquire: kernel ones until the filesystem turns out to
 * have no `flock` (then pidfile ones, within the same deadline), or pidfile
 * ones from the start.
 */
export class Acquisition implements Attempter<Lock> {
  /** The absolute lock path. */
  readonly path: string;
  readonly options: ValidOptions;
  readonly #mayFallBack: boolean;
  #kernel: KernelRequest | undefined;
  #pidfile: PidfileRequest | undefined;
  /** A waiting acquire may give the lock back to other processes' waiters (not tryAcquire). */
  mayYield = false;
  /** Set by the wait loop around its first attempt (`Attempter.fastPath`). */
  fastPath = false;
  #yielded = false;

  /** Validates `path` and `options` and resolves the backend; throws what the caller got wrong. */
  constructor(path: unknown, options: unknown) {
    const absolute = lockPath(path);
    const valid = lockOptions(options);
    this.path = absolute;
    this.options = valid;
    const backend = resolveBackend(valid.backend);
    this.#mayFallBack = backend.mayFallBack;
    const binding = backend.binding;
    if (binding === undefined) {
      if (backend.mayFallBack) {
        warnOnce(
          "pidfile",
          `using the pidfile backend, which flock(1) and other kernel lock users do not see: ${backend.result.reason} ${CHOOSE_KNOWINGLY}`,
        );
      }
      this.#pidfile = pidfileRequest(absolute, valid, undefined);
      return;
    }
    const kernel: KernelRequest = {
      binding,
      path: absolute,
      encoded: encoded(binding, absolute),
      shared: valid.shared,
      mode: valid.mode,
      removeCreatedOnFallback: backend.mayFallBack,
      allowForeignOwner: valid.allowForeignOwner,
      removeOnRelease: valid.removeOnRelease && !valid.shared,
    };
    if (kernel.removeOnRelease) refuseRemovalOnNetwork(absolute, binding);
    if (lockKindFor(absolute, backend) === "pidfile") this.#fallBack(kernel);
    else this.#kernel = kernel;
  }

  /**
   * Asks a filesystem that may leave `flock` unanswered (network, FUSE) for
   * its first lock on a thread of its own, within the deadline
   * (`src/kernel/hang_guard.ts`); `undefined` where there is nothing to ask
   * (the usual case: no promise, no extra turn of the event loop).
   */
  firstAnswer(deadline: number, signal: AbortSignal | undefined): Promise<void> | undefined {
    const kernel = this.#kernel;
    if (kernel === undefined || !needsGuard(kernel)) return undefined;
    return guard(kernel, deadline, signal);
  }

  /** `firstAnswer`, blocking the thread (at most until the deadline; `undefined`: now). */
  firstAnswerSync(deadline: number | undefined): void {
    const kernel = this.#kernel;
    if (kernel !== undefined && needsGuard(kernel)) guardSync(kernel, deadline);
  }

  get canBlock(): boolean {
    return this.#kernel !== undefined;
  }

  /**
   * The lock file whose releases the kernel reports to waiters: a kernel lock
   * through OS descriptors on a local filesystem (inotify sees no other
   * host's release, and a network filesystem may need writable descriptors).
   */
  get wakeupFile(): WakeupFile | undefined {
    const kernel = this.#kernel;
    if (kernel === undefined || kernel.binding.osDescriptors !== true) return undefined;
    return filesystemOf(kernel.path, kernel.binding).network ? undefined : kernel;
  }

  attempt(blocking: boolean, quiet = false): Attempt<Lock> {
    try {
      return this.#attempt(blocking, quiet);
    } catch (error) {
      const kernel = this.#kernel;
      const throughDenoFiles = kernel === undefined || !kernel.binding.osDescriptors;
      throw error instanceof LockError ? explainRefusal(error, throughDenoFiles) : error;
    }
  }

  #attempt(blocking: boolean, quiet: boolean): Attempt<Lock> {
    const kernel = this.#kernel;
    if (kernel !== undefined) {
      // A waiter that loses a race marks the file (./kernel/fairness.ts).
      const onBusy = quiet ? this.#onBusy ??= (fd) => this.#markWaiting(fd) : undefined;
      const result = attemptKernel(kernel, blocking, quiet, onBusy);
      if (result.outcome === "held") {
        if (this.#yields(kernel, result.value, quiet)) return BUSY;
        const { removeOnRelease } = this.options;
        // A quiet holder's release still wakes the waiters: through a writable descriptor.
        const announcer = quiet && !removeOnRelease ? openAnnouncer(kernel) : -1;
        return held(new KernelLock(kernel, result.value, removeOnRelease, announcer));
      }
      if (result.outcome !== "unsupported") return result;
      if (!this.#mayFallBack) throw result.error;
      this.#fallBack(kernel);
      return REPLACED; // try again at once, as pidfile
    }
    const request = this.#pidfile!;
    const result = attemptPidfile(request);
    return result.outcome === "held" ? held(new PidfileLock(request, result.value)) : result;
  }

  /** When this acquisition began to wait (its first lost race), in µs of wall clock. */
  #waitingSince: number | undefined;
  /** `#markWaiting` bound to this acquisition, made on its first lost race (not per acquire). */
  #onBusy: ((fd: number) => void) | undefined;

  /** Marks the file a lost race found busy (`src/kernel/fairness.ts`). */
  #markWaiting(fd: number): void {
    const binding = this.#kernel!.binding;
    if (binding.fstat(fd, markIdentity) !== 0) return;
    this.#waitingSince ??= wallMicroseconds();
    markWaiting(fd, accessTimeOf(markIdentity), this.#waitingSince);
  }

  /**
   * Whether to give back the lock just taken on `fd`: a waiting acquire that
   * took it first try (no queue behind it in this process) on the file it
   * last held, which another process marked as waited for a quantum ago.
   */
  #yields(kernel: KernelRequest, fd: number, quiet: boolean): boolean {
    const mayYield = this.fastPath && this.mayYield && !quiet &&
      kernel.binding.osDescriptors === true;
    if (!yieldsTo(lockedIdentity(), mayYield)) return false;
    kernel.binding.flock(fd, kernel.binding.constants.LOCK_UN);
    kernel.binding.close(fd);
    this.#yielded = true;
    return true;
  }

  /** Whether the last attempt gave the lock back to waiters (once: reading clears it). */
  consumeYield(): boolean {
    const yielded = this.#yielded;
    this.#yielded = false;
    return yielded;
  }

  timedOut(): LockTimeoutError {
    const { timeout } = this.options;
    const kernel = this.#kernel;
    return kernel !== undefined
      ? kernelTimedOut(kernel.path, kernel.shared, timeout)
      : pidfileTimedOut(this.#pidfile!, timeout);
  }

  /**
   * The path's filesystem has no `flock`: pidfile from now on, in this
   * process, never removing a file that kernel users (who may share the
   * path) hold.
   */
  #fallBack(kernel: KernelRequest): void {
    flockRefused.add(kernel.path);
    warnOnce(
      "no-flock",
      `the filesystem of ${kernel.path} has no flock(2): it is locked with the pidfile backend, which flock(1) and other kernel lock users do not see (later paths on such filesystems too); ${CHOOSE_KNOWINGLY}`,
    );
    this.#pidfile = pidfileRequest(kernel.path, this.options, () => heldByKernelUser(kernel));
    this.#kernel = undefined;
  }
}

/**
 * A permission error, with the Deno flags that would have allowed it where
 * Deno's permissions (not the OS's) refused it: the native and pidfile
 * backends work through Deno's file APIs (the FFI backend does not).
 */
export function explainRefusal(
  error: LockError,
  throughDenoFiles: boolean,
  locking = true,
): LockError {
  if (error.code !== "EACCES" || !throughDenoFiles) return error;
  const where = dirname(error.path);
  const flags = missingDenoFlags(
    locking
      ? [{ name: "read", path: where }, { name: "write", path: where }]
      : [{ name: "read", path: where }],
  );
  return withHint(
    error,
    flags.length === 0
      ? undefined
      : `Deno refused it: run with ${flags.join(" ")}${locking ? ", or --allow-ffi" : ""}`,
  );
}
