/**
 * Synchronous loading of what only one runtime has (`bun:ffi` in Bun, koffi in
 * Node), on first use: no top-level await, so that the module also loads as
 * CommonJS, and nothing is loaded in a runtime that does not need it.
 *
 * @module
 */

import type * as NodeModule from "node:module";
import { builtin } from "./builtins.ts";

/**
 * `require(specifier)`, resolved from this module (so that koffi is found
 * beside the package). Called only in Bun and Node, where this module has a
 * `file:` URL (Deno may load it from JSR over https, where `createRequire`
 * would refuse).
 */
export function requireModule<T>(specifier: string): T {
  return builtin<typeof NodeModule>("node:module").createRequire(import.meta.url)(specifier) as T;
}
