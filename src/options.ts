/**
 * Validation of the public API's arguments: `TypeError` for a wrong type,
 * `RangeError` for a value out of range, `LockError` `EINVAL` for an unusable
 * path.
 *
 * @module
 */

import { isAbsolute, normalize, sep } from "node:path";
import type * as NodeUrl from "node:url";
import { builtin } from "../ffi/builtins.ts";
import { os } from "../ffi/runtime.ts";
import { workingDirectory } from "../ffi/node_process.ts";
import { missingDenoFlags } from "../ffi/runtime.ts";
import { LockError } from "./errors.ts";
import { type CommonOptions, commonOptions } from "./common_options.ts";

export { type CommonOptions, commonOptions } from "./common_options.ts";
import type { BackendRequest, LockOptions } from "./types.ts";

/** Options after validation, with defaults filled in. */
export interface ValidOptions extends CommonOptions {
  backend: BackendRequest | undefined;
  removeOnRelease: boolean;
  mode: number;
  staleMs: number;
  onCompromised: ((error: LockError) => void) | undefined;
  allowForeignOwner: boolean;
}

const BACKEND_REQUESTS: readonly string[] = ["auto", "ffi", "native", "pidfile"];

/**
 * Checks a backend request (an option, `FILELOCK_BACKEND`, the CLI's
 * `--backend`): `undefined` when `value` names one, else what is wrong with
 * it, for the caller to throw as its own kind of error after `what`.
 */
export function backendRequestProblem(value: unknown): string | undefined {
  if (typeof value === "string" && BACKEND_REQUESTS.includes(value)) return undefined;
  return `must be one of ${BACKEND_REQUESTS.join(", ")}, got '${String(value)}'`;
}

/**
 * A backend request from the API (`undefined`: none given); a `TypeError`
 * naming `what` when `value` is not one.
 */
export function backendRequest(value: unknown, what: string): BackendRequest | undefined {
  if (value === undefined) return undefined;
  const problem = backendRequestProblem(value);
  if (problem !== undefined) throw new TypeError(`${what} ${problem}`);
  return value as BackendRequest;
}

// The last absolute path given and its normal form: repeated locks skip normalize().
let lastAbsolute = "";
let lastNormal = "";

/** Whether a path has a `..` component (either separator on Windows). */
function hasParentComponent(path: string): boolean {
  return path.split(os === "windows" ? /[\\/]/ : "/").includes("..");
}

/**
 * The absolute form of `text` that names the file the kernel would open.
 * Without a `..` component, lexical normalisation (dropping `.` and repeated
 * separators) names the same file. With one, it may not: POSIX resolves `..`
 * after following the symlink before it (`/d/app/../x` with `app -> /e/f` is
 * `/e/x`, not `/d/x`), so such a path is kept as written, made absolute, and
 * left to the kernel. Windows resolves `..` lexically itself, but our
 * `\\?\` long paths skip that, so there it is normalised here.
 */
function absolutePath(text: string): string {
  if (isAbsolute(text) && text === lastAbsolute) return lastNormal;
  const absolute = isAbsolute(text) ? text : `${currentDirectory(text)}${sep}${text}`;
  if (os !== "windows" && hasParentComponent(absolute)) return absolute;
  const normal = normalize(absolute);
  if (isAbsolute(text)) {
    lastAbsolute = text;
    lastNormal = normal;
  }
  return normal;
}

/** The working directory for a relative path; Deno reads it only with `--allow-read`. */
function currentDirectory(text: string): string {
  try {
    return workingDirectory();
  } catch (error) {
    const flags = missingDenoFlags([{ name: "read" }]);
    throw new LockError({
      code: "EACCES",
      path: text,
      cause: error,
      detail: flags.length > 0
        ? `a relative lock path needs the working directory, which Deno reads only with ${
          flags.join(" ")
        }: pass an absolute path, or run with that flag`
        : "the working directory cannot be read",
    });
  }
}

function urlPath(url: URL): string {
  if (url.protocol !== "file:") {
    throw new TypeError(`lock path URL must use the file: protocol, got '${url.protocol}'`);
  }
  let text: string;
  try {
    // node:url only for a URL: a plain path (the usual case) never loads it.
    text = builtin<typeof NodeUrl>("node:url").fileURLToPath(url);
  } catch (error) {
    throw new LockError({
      code: "EINVAL",
      path: url.href,
      cause: error,
      detail: `the file: URL does not name a path (${(error as Error).message})`,
    });
  }
  // Bun decodes an invalid escape such as %FF to nothing.
  if (text.length === 0 || (url.pathname.length > 1 && text === "/")) {
    throw new LockError({
      code: "EINVAL",
      path: url.href,
      detail: "the file: URL does not decode to a path (an invalid %-escape?)",
    });
  }
  return text;
}

/** Turns `path` into an absolute path string, or throws. */
export function lockPath(path: unknown): string {
  let text: string;
  if (typeof path === "string") {
    text = path;
  } else if (path instanceof URL) {
    text = urlPath(path);
  } else {
    throw new TypeError(`lock path must be a string or a file: URL, got ${typeof path}`);
  }
  if (text.length === 0) {
    throw new LockError({ code: "EINVAL", path: text, detail: "the lock path is empty" });
  }
  if (text.includes("\0")) {
    throw new LockError({
      code: "EINVAL",
      path: text.replaceAll("\0", "\\0"),
      detail: "the lock path contains a NUL character",
    });
  }
  return absolutePath(text);
}

const DEFAULTS: ValidOptions = Object.freeze({
  shared: false,
  timeout: Infinity,
  signal: undefined,
  backend: undefined,
  removeOnRelease: false,
  mode: 0o644,
  staleMs: Infinity,
  onCompromised: undefined,
  allowForeignOwner: false,
});

/** Validates options and fills in defaults. */
export function lockOptions(options: unknown): ValidOptions {
  if (options === undefined || options === null) return DEFAULTS;
  const { shared, timeout, signal } = commonOptions(options);
  const o = options as LockOptions;
  if (o.removeOnRelease !== undefined && typeof o.removeOnRelease !== "boolean") {
    throw new TypeError("options.removeOnRelease must be a boolean");
  }
  const backend = backendRequest(o.backend, "options.backend");
  const mode = o.mode ?? 0o644;
  if (typeof mode !== "number") throw new TypeError("options.mode must be a number");
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(
      `options.mode must be permission bits in 0..0o777 (no setuid, setgid or sticky bit), got 0o${
        Number.isInteger(mode) && mode >= 0 ? mode.toString(8) : mode
      }`,
    );
  }
  const staleMs = o.staleMs ?? Infinity;
  if (typeof staleMs !== "number") throw new TypeError("options.staleMs must be a number");
  if (Number.isNaN(staleMs) || staleMs <= 0) {
    throw new RangeError(`options.staleMs must be > 0 or Infinity, got ${staleMs}`);
  }
  if (o.onCompromised !== undefined && typeof o.onCompromised !== "function") {
    throw new TypeError("options.onCompromised must be a function");
  }
  if (o.allowForeignOwner !== undefined && typeof o.allowForeignOwner !== "boolean") {
    throw new TypeError("options.allowForeignOwner must be a boolean");
  }
  return {
    shared,
    timeout,
    signal,
    backend,
    removeOnRelease: o.removeOnRelease ?? false,
    mode,
    staleMs,
    onCompromised: o.onCompromised,
    allowForeignOwner: o.allowForeignOwner ?? false,
  };
}
