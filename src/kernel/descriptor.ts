/**
 * A lock on a descriptor someone else opened (the CLI's descriptor mode, as
 * in `exec 9>lock; flock 9`): one `flock` on it, no identity check (the file
 * is whatever the descriptor's owner opened), and nothing opened or closed.
 * The lock outlives this process, held by the shell's open file description.
 *
 * @module
 */

import type { Binding } from "../../ffi/types.ts";
import { type Attempt, BUSY, held } from "../attempt.ts";
import { LockError, LockTimeoutError } from "../errors.ts";
import type { Attempter } from "../wait.ts";
import { flockRetrying } from "./engine.ts";

/** How a descriptor is named in errors: as flock(1) names it. */
export function descriptorName(fd: number): string {
  return String(fd);
}

/** The attempts at a lock on descriptor `fd`, for the wait loop. */
export class DescriptorLocking implements Attempter<number> {
  readonly canBlock = true;
  readonly #binding: Binding;
  readonly #fd: number;
  readonly #shared: boolean;
  readonly #timeout: number;

  constructor(binding: Binding, fd: number, shared: boolean, timeout: number) {
    this.#binding = binding;
    this.#fd = fd;
    this.#shared = shared;
    this.#timeout = timeout;
  }

  attempt(blocking: boolean): Attempt<number> {
    const binding = this.#binding;
    const c = binding.constants;
    const operation = (this.#shared ? c.LOCK_SH : c.LOCK_EX) | (blocking ? 0 : c.LOCK_NB);
    const result = flockRetrying(binding, this.#fd, operation);
    if (result === 0) return held(this.#fd);
    if (binding.errnoName(-result) === "EWOULDBLOCK") return BUSY;
    throw new LockError({
      code: binding.errnoName(-result),
      path: descriptorName(this.#fd),
      cause: -result,
    });
  }

  timedOut(): LockTimeoutError {
    return new LockTimeoutError(
      descriptorName(this.#fd),
      `timed out after ${this.#timeout} ms waiting for the lock on descriptor ${this.#fd}`,
    );
  }
}

/** Unlocks descriptor `fd`: 0, or `-errno`. */
export function unlockDescriptor(binding: Binding, fd: number): number {
  return flockRetrying(binding, fd, binding.constants.LOCK_UN);
}
