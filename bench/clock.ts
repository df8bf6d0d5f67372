// CLOCK_MONOTONIC in milliseconds, the same clock in every process and runtime (each runtime's
// own performance.now() and hrtime count from different origins): hand-off latencies are
// differences between a stamp one process writes and the time another reads it.
import { createRequire } from "node:module";

const scope = globalThis as { Deno?: typeof Deno; Bun?: unknown };
const CLOCK_MONOTONIC = 1;
const spec = new BigInt64Array(2);

function bind(): () => number {
  if (scope.Deno !== undefined) {
    const { clock_gettime } = scope.Deno.dlopen("libc.so.6", {
      clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
    }).symbols;
    return () => {
      clock_gettime(CLOCK_MONOTONIC, new Uint8Array(spec.buffer));
      return Number(spec[0]) * 1e3 + Number(spec[1]) / 1e6;
    };
  }
  const require = createRequire(import.meta.url);
  if (scope.Bun !== undefined) {
    const { dlopen } = require("bun:ffi");
    const { clock_gettime } = dlopen("libc.so.6", {
      clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
    }).symbols;
    return () => {
      clock_gettime(CLOCK_MONOTONIC, spec);
      return Number(spec[0]) * 1e3 + Number(spec[1]) / 1e6;
    };
  }
  // Node: process.hrtime is CLOCK_MONOTONIC already.
  return () => Number(process.hrtime.bigint()) / 1e6;
}

/** Milliseconds on CLOCK_MONOTONIC. */
export const monotonicMs: () => number = bind();
