/**
 * What every held lock shares, whatever its backend: the asynchronous and
 * disposable forms of a synchronous, idempotent release.
 *
 * @module
 */

import type { BackendName } from "../ffi/types.ts";
import { type Holding, type IdentityReader, noteHeld, noteReleased } from "./held_here.ts";
import type { Lock } from "./types.ts";

/**
 * A held lock; a backend's lock class supplies `releaseSync` and its state,
 * and calls {@linkcode HeldLock.forget} once the lock is no longer held.
 */
export abstract class HeldLock implements Lock, Holding {
  readonly path: string;
  readonly shared: boolean;
  abstract readonly backend: BackendName;
  abstract readonly released: boolean;

  /**
   * Notes the lock as held by this thread, which then refuses a synchronous
   * wait for its file by any path (`src/held_here.ts`).
   */
  constructor(path: string, shared: boolean) {
    this.path = path;
    this.shared = shared;
    noteHeld(this);
  }

  /** The locked file's identity (device and inode) in the terms of {@linkcode identityReader}. */
  abstract identityKey(): string;

  /** Reads another path's identity the same way. */
  abstract readonly identityReader: IdentityReader;

  /** Notes that this thread no longer holds the lock; once, when `released` turns true. */
  protected forget(): void {
    noteReleased(this);
  }

  /** Releases the lock synchronously; idempotent. */
  abstract releaseSync(): void;

  /** Releases the lock; idempotent. Rejects with what `releaseSync` throws. */
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
