/**
 * `node:` built-ins loaded on first use instead of at import: Deno loads each
 * one it is asked for (node:fs and node:process cost tens of milliseconds of
 * start-up there), and a kernel lock needs none of them. Deno, Bun and Node
 * all implement `process.getBuiltinModule`.
 *
 * @module
 */

interface BuiltinLoader {
  getBuiltinModule(id: string): unknown;
}

/**
 * The `node:` module `id`, loaded now if it was not yet.
 *
 * @example
 * ```ts ignore
 * import type * as NodeFs from "node:fs";
 * const fs = builtin<typeof NodeFs>("node:fs");
 * ```
 */
export function builtin<T>(id: string): T {
  return (globalThis as unknown as { process: BuiltinLoader }).process.getBuiltinModule(id) as T;
}

/**
 * Keeps `timer` (from the global `setTimeout`/`setInterval`) from holding
 * the process open: `unref()` in Node and Bun, `Deno.unrefTimer` in Deno.
 */
export function unrefTimer(timer: unknown): void {
  const deno = (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno;
  if (deno !== undefined) deno.unrefTimer(timer as number);
  else (timer as { unref(): void }).unref();
}
