/**
 * The options both lock APIs share (`shared`, `timeout`, `signal`), checked
 * once for both: the file API (`src/options.ts`) and
 * `@lockkit/filelock/postgres`, which imports this module alone so that it
 * loads none of the file API's FFI layer.
 *
 * @module
 */

import type { LockOptions } from "./types.ts";

/** The options the file API and `@lockkit/filelock/postgres` share, after validation. */
export interface CommonOptions {
  shared: boolean;
  timeout: number;
  signal: AbortSignal | undefined;
}

/**
 * Validates the options object (`undefined`: none given) and the options
 * both lock APIs share, `shared`, `timeout` and `signal`, and fills in their
 * defaults; the same errors and messages for both.
 */
export function commonOptions(options: unknown): CommonOptions {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError(
      `options must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  const o = (options ?? {}) as Pick<LockOptions, "shared" | "timeout" | "signal">;
  if (o.shared !== undefined && typeof o.shared !== "boolean") {
    throw new TypeError("options.shared must be a boolean");
  }
  const timeout = o.timeout ?? Infinity;
  if (typeof timeout !== "number") throw new TypeError("options.timeout must be a number");
  if (Number.isNaN(timeout) || timeout < 0) {
    throw new RangeError(`options.timeout must be >= 0 or Infinity, got ${timeout}`);
  }
  const signal = o.signal;
  if (
    signal !== undefined &&
    (typeof signal !== "object" || signal === null || typeof signal.aborted !== "boolean" ||
      typeof signal.addEventListener !== "function")
  ) {
    throw new TypeError("options.signal must be an AbortSignal");
  }
  return { shared: o.shared ?? false, timeout, signal };
}
