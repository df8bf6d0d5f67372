/**
 * What every held lock shares, whatever its backend: the asynchronous and
 * disposable forms of a synchronous, idempotent release.
 *
 * @module
 */

import type { BackendName } from "../ffi/types.ts";
import type { Lock } from "./types.ts";

/** A held lock; a backend's lock class supplies `releaseSync` and its state. */
export abstract class HeldLock implements Lock {
  abstract readonly path: string;
  abstract readonly shared: boolean;
  abstract readonly backend: BackendName;
  abstract readonly released: boolean;

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
