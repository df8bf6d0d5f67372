/**
 * Which runtime and OS this is, the environment where the runtime lets us read
 * it, and the kernel-lock bindings this process may use. The only module that
 * decides which runtime-specific binding to load; `src/` asks it, never a
 * runtime API.
 *
 * @module
 */

import type { Binding } from "./types.ts";
import { type PosixTable, posixTable } from "./posix_tables.ts";
import { errnoLookup } from "./posix.ts";
import { WINDOWS_CONSTANTS, windowsErrno } from "./windows_table.ts";
import { type BunFfi, createBunBinding, createBunWindowsBinding, loadBunFfi } from "./bun.ts";
import { createDenoBinding, createDenoWindowsBinding } from "./deno.ts";
import { createDenoNativeBinding } from "./deno_native.ts";
import { createNodeBinding, createNodeWindowsBinding, type Koffi, loadKoffi } from "./node.ts";

/** The three runtimes. */
export type RuntimeName = "deno" | "bun" | "node";

interface DenoLike {
  build: { os: string; arch: string };
  permissions: {
    querySync(
      descriptor: { name: string; path?: string; variable?: string; kind?: string },
    ): { state: string };
  };
  env: { get(name: string): string | undefined };
}
interface ProcessLike {
  platform: string;
  arch: string;
  env: Record<string, string | undefined>;
}

const scope = globalThis as { Deno?: DenoLike; Bun?: unknown; process?: ProcessLike };

/** The runtime this module runs in. */
export const runtime: RuntimeName = scope.Deno !== undefined
  ? "deno"
  : scope.Bun !== undefined
  ? "bun"
  : "node";

/** `"linux"`, `"darwin"`, `"windows"`, ... as Deno names them. */
export const os: string = scope.Deno !== undefined
  ? scope.Deno.build.os
  : scope.process?.platform === "win32"
  ? "windows"
  : scope.process?.platform ?? "unknown";

/** `"x86_64"` or `"aarch64"` where known. */
export const arch: string = scope.Deno !== undefined
  ? scope.Deno.build.arch
  : scope.process?.arch === "x64"
  ? "x86_64"
  : scope.process?.arch === "arm64"
  ? "aarch64"
  : scope.process?.arch ?? "unknown";

/**
 * An environment variable, or `undefined` when it is unset or the runtime
 * does not let us read it (Deno without `--allow-env`: never prompts).
 */
export function readEnvironment(name: string): string | undefined {
  if (scope.Deno !== undefined) {
    const status = scope.Deno.permissions.querySync({ name: "env", variable: name });
    return status.state === "granted" ? scope.Deno.env.get(name) : undefined;
  }
  return scope.process?.env[name];
}

/** A Deno permission, as `Deno.permissions.querySync` takes it. */
export type DenoPermission =
  | { name: "read" | "write"; path?: string }
  | { name: "env"; variable?: string }
  | { name: "run"; command?: string }
  | { name: "sys"; kind?: string }
  | { name: "ffi"; path?: string };

/**
 * The command-line flags of the permissions in `wanted` that this Deno
 * process lacks (`--allow-read=/srv/app`, ...); empty where all are granted,
 * and outside Deno. It never prompts.
 */
export function missingDenoFlags(wanted: readonly DenoPermission[]): string[] {
  const deno = scope.Deno;
  if (deno === undefined) return [];
  const missing: string[] = [];
  for (const permission of wanted) {
    if (deno.permissions.querySync(permission).state === "granted") continue;
    const target = "path" in permission
      ? permission.path
      : "variable" in permission
      ? permission.variable
      : "command" in permission
      ? permission.command
      : "kind" in permission
      ? permission.kind
      : undefined;
    missing.push(`--allow-${permission.name}${target === undefined ? "" : `=${target}`}`);
  }
  return missing;
}

/** A binding, or the one-sentence reason it is not available. */
export type BindingResult = { binding: Binding; reason: string } | {
  binding?: undefined;
  reason: string;
};

const table: PosixTable | undefined = posixTable(os, arch);

/** The POSIX table of this OS and architecture (libraries, symbols), where there is one. */
export function posixTableHere(): PosixTable | undefined {
  return table;
}
/** Windows on x64 or arm64: kernel32 through the same runtimes' FFI. */
const windows = os === "windows" && (arch === "x86_64" || arch === "aarch64");
const supported = table !== undefined || windows;
const noTable = `no kernel-lock binding exists yet for ${os} on ${arch}`;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The libraries FFI is asked for, and what the binding binds there. */
const ffiTarget = windows
  ? { libraries: ["kernel32.dll"], calls: "LockFileEx in kernel32" }
  : { libraries: table?.libraries ?? [], calls: "flock(2) in libc" };

function loadFfi(): BindingResult {
  if (!supported) return { reason: noTable };
  if (runtime === "deno") {
    const deno = scope.Deno!;
    const granted = ffiTarget.libraries.find((library) =>
      deno.permissions.querySync({ name: "ffi", path: library }).state === "granted"
    );
    if (granted === undefined) {
      return { reason: `Deno has no FFI permission for ${ffiTarget.libraries[0]}` };
    }
    try {
      return {
        binding: windows ? createDenoWindowsBinding() : createDenoBinding(table!),
        reason: `Deno.dlopen bound ${ffiTarget.calls}${windows ? "" : ` (${granted})`}`,
      };
    } catch (error) {
      return { reason: `Deno.dlopen could not bind ${ffiTarget.calls}: ${message(error)}` };
    }
  }
  if (runtime === "bun") {
    let bunFfi: BunFfi;
    try {
      bunFfi = loadBunFfi();
    } catch (error) {
      return { reason: `bun:ffi could not be loaded: ${message(error)}` };
    }
    try {
      return {
        binding: windows ? createBunWindowsBinding(bunFfi) : createBunBinding(bunFfi, table!),
        reason: `bun:ffi bound ${ffiTarget.calls}`,
      };
    } catch (error) {
      return { reason: `bun:ffi could not bind ${ffiTarget.calls}: ${message(error)}` };
    }
  }
  let koffi: Koffi;
  try {
    koffi = loadKoffi();
  } catch (error) {
    return {
      reason: `koffi could not be loaded (install the koffi package): ${message(error)}`,
    };
  }
  try {
    return {
      binding: windows ? createNodeWindowsBinding(koffi) : createNodeBinding(koffi, table!),
      reason: `koffi bound ${ffiTarget.calls}`,
    };
  } catch (error) {
    return { reason: `koffi could not bind ${ffiTarget.calls}: ${message(error)}` };
  }
}

function loadNative(): BindingResult {
  if (runtime !== "deno") {
    return { reason: `the native backend exists only on Deno, not ${runtime}` };
  }
  if (!supported) return { reason: noTable };
  return {
    binding: windows
      ? createDenoNativeBinding(windowsErrno, WINDOWS_CONSTANTS)
      : createDenoNativeBinding(errnoLookup(table!), table!.constants),
    reason: `Deno.FsFile.tryLock takes a kernel ${windows ? "LockFileEx" : "flock"} without FFI`,
  };
}

let ffiResult: BindingResult | undefined;
let nativeResult: BindingResult | undefined;

/**
 * This runtime's FFI binding (`deno-ffi`, `bun-ffi` or `node-koffi`), loaded
 * once, or why there is none.
 */
export function ffiBinding(): BindingResult {
  return ffiResult ??= loadFfi();
}

/** The `deno-native` binding, or why there is none. */
export function nativeBinding(): BindingResult {
  return nativeResult ??= loadNative();
}

/**
 * What keeps the pidfile backend from judging holders in this process, in
 * words a user can act on; empty when nothing does. Only Deno's permissions
 * can get in the way (/proc opens only under --allow-all there).
 */
export function pidfileLimits(): string[] {
  if (scope.Deno === undefined) return [];
  const limits: string[] = [];
  const granted = (descriptor: { name: string; kind?: string }) =>
    scope.Deno!.permissions.querySync(descriptor).state === "granted";
  if (!granted({ name: "sys", kind: "hostname" })) {
    limits.push(
      "without --allow-sys=hostname Deno's records name no host, so no process can reclaim them after a crash",
    );
  }
  if (!granted({ name: "run" })) {
    limits.push(
      "without --allow-run (or --allow-all for /proc) Deno cannot tell whether another holder is alive, so it never reclaims a stale lock",
    );
  }
  return limits;
}
