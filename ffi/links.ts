/**
 * `readlink(2)` through `node:fs`, for the CLI, which follows a lock path's
 * symbolic links as flock(1) does (the library never follows them).
 *
 * @module
 */

import { readlinkSync } from "node:fs";
import { missingDenoFlags } from "./runtime.ts";

/**
 * What the symbolic link at `path` points to, as stored in it; `undefined`
 * where `path` is not a symbolic link, does not exist, or cannot be read
 * (Deno without `--allow-read` for it: never a prompt).
 */
export function readLink(path: string): string | undefined {
  // Deno would prompt for what it was not allowed; ask first (it never prompts).
  if (missingDenoFlags([{ name: "read", path }]).length > 0) return undefined;
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
