/**
 * A held kernel lock and its release: (unlink if asked and exclusive) ->
 * unlock -> close, once.
 *
 * @module
 */

import type { BackendName, Binding, EncodedPath } from "../ffi/types.ts";
import { newIdentity, sameFile } from "../ffi/types.ts";
import { LockError } from "./errors.ts";
import type { Lock } from "./types.ts";

const ours = newIdentity();
const atPath = newIdentity();

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
export class KernelLock implements Lock {
  readonly path: string;
  readonly shared: boolean;
  readonly backend: BackendName;
  #binding: Binding;
  #encoded: EncodedPath;
  #fd: number;
  #removeOnRelease: boolean;

  constructor(
    binding: Binding,
    path: string,
    encoded: EncodedPath,
    fd: number,
    shared: boolean,
    removeOnRelease: boolean,
  ) {
    this.#binding = binding;
    this.path = path;
    this.#encoded = encoded;
    this.#fd = fd;
    this.shared = shared;
    this.backend = binding.backend;
    // A shared holder never unlinks: readers and a writer would split across two inodes.
    this.#removeOnRelease = removeOnRelease && !shared;
  }

  get released(): boolean {
    return this.#fd < 0;
  }

  releaseSync(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    const binding = this.#binding;
    let unlinkError = 0;
    if (this.#removeOnRelease) unlinkError = unlinkIfOurs(this.#binding, this.#encoded, fd);
    // Closing the last descriptor drops the lock; unlocking first makes the
    // hand-off independent of any descriptor a runtime may still share.
    binding.flock(fd, binding.constants.LOCK_UN);
    const closeResult = binding.close(fd);
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

  release(): Promise<void> {
    try {
      this.releaseSync();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  [Symbol.dispose](): void {
    this.releaseSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
