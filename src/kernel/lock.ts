/**
 * A held kernel lock and its release: (unlink if asked and exclusive) ->
 * unlock -> close, once.
 *
 * @module
 */

import type { BackendName, Binding, EncodedPath, FileIdentity } from "../../ffi/types.ts";
import { newIdentity, sameFile } from "../../ffi/types.ts";
import { LockError } from "../errors.ts";
import type { IdentityReader } from "../held_here.ts";
import { HeldLock } from "../held_lock.ts";
import { type KernelRequest, lockedIdentity } from "./engine.ts";

const ours = newIdentity();
const atPath = newIdentity();

/** Device and inode of an identity, as a key (kind, owner and mode left out). */
function identityKey(identity: FileIdentity): string {
  return `${identity[0]}:${identity[1]}:${identity[2]}:${identity[3]}`;
}

const readers = new WeakMap<Binding, IdentityReader>();

/** Reads a path's identity through `binding`'s `lstat`, as the identity check after locking does. */
function readerOf(binding: Binding): IdentityReader {
  let reader = readers.get(binding);
  if (reader === undefined) {
    const seen = newIdentity();
    reader = (path: string): string | null | undefined => {
      const result = binding.lstat(binding.encodePath(path), seen);
      if (result === 0) return identityKey(seen);
      return binding.errnoName(-result) === "ENOENT" ? null : undefined;
    };
    readers.set(binding, reader);
  }
  return reader;
}

/**
 * Unlinks the path only while it still names the file open as `fd`; returns
 * an errno or 0 (a path already gone is 0).
 */
export function unlinkIfOurs(binding: Binding, encoded: EncodedPath, fd: number): number {
  if (binding.fstat(fd, ours) !== 0 || binding.lstat(encoded, atPath) !== 0) return 0;
  if (!sameFile(ours, atPath)) return 0;
  const result = binding.unlink(encoded);
  return result === 0 || binding.errnoName(-result) === "ENOENT" ? 0 : -result;
}

/** A lock held through a kernel binding. */
export class KernelLock extends HeldLock {
  readonly backend: BackendName;
  #binding: Binding;
  #encoded: EncodedPath;
  #fd: number;
  /** A writable descriptor closed after the lock's (see `openAnnouncer`), or -1. */
  #announcer: number;
  #removeOnRelease: boolean;

  /** The locked file's device and inode, from the attempt's `fstat` (a key only when asked). */
  readonly #devLow: number;
  readonly #devHigh: number;
  readonly #inoLow: number;
  readonly #inoHigh: number;

  constructor(request: KernelRequest, fd: number, removeOnRelease: boolean, announcer = -1) {
    super(request.path, request.shared);
    // The attempt that just answered `held` left its file's identity there.
    const file = lockedIdentity();
    this.#devLow = file[0];
    this.#devHigh = file[1];
    this.#inoLow = file[2];
    this.#inoHigh = file[3];
    this.#binding = request.binding;
    this.#encoded = request.encoded;
    this.#fd = fd;
    this.#announcer = announcer;
    this.backend = request.binding.backend;
    // A shared holder never unlinks: readers and a writer would split across two inodes.
    this.#removeOnRelease = removeOnRelease && !request.shared;
  }

  get released(): boolean {
    return this.#fd < 0;
  }

  identityKey(): string {
    return `${this.#devLow}:${this.#devHigh}:${this.#inoLow}:${this.#inoHigh}`;
  }

  get identityReader(): IdentityReader {
    return readerOf(this.#binding);
  }

  /** See {@linkcode inheritableDescriptor}. */
  static descriptorOf(lock: unknown): number | undefined {
    if (!(lock instanceof KernelLock) || lock.#fd < 0 || !lock.#binding.osDescriptors) {
      return undefined;
    }
    return lock.#fd;
  }

  releaseSync(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    this.forget();
    const binding = this.#binding;
    let unlinkError = 0;
    if (this.#removeOnRelease) unlinkError = unlinkIfOurs(binding, this.#encoded, fd);
    // Closing the last descriptor drops the lock; unlocking first makes the
    // hand-off independent of any descriptor a runtime may still share.
    binding.flock(fd, binding.constants.LOCK_UN);
    const closeResult = binding.close(fd);
    // After the unlock: the waiters it wakes find the lock free.
    if (this.#announcer >= 0) binding.close(this.#announcer);
    if (unlinkError !== 0) {
      throw new LockError({
        code: binding.errnoName(unlinkError),
        path: this.path,
        cause: unlinkError,
        detail: "the lock was released but its file could not be removed",
      });
    }
    if (closeResult !== 0) {
      throw new LockError({
        code: binding.errnoName(-closeResult),
        path: this.path,
        cause: -closeResult,
        detail: "the lock was released but closing its descriptor failed",
      });
    }
  }
}

/**
 * The OS file descriptor that holds `lock`, while a kernel backend with OS
 * descriptors (POSIX FFI) holds it; for the CLI, whose command inherits it.
 */
export function inheritableDescriptor(lock: unknown): number | undefined {
  return KernelLock.descriptorOf(lock);
}
