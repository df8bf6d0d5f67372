/**
 * The probe: which backend a request resolves to in this process, and why.
 *
 * @module
 */

import type { BackendName, Binding } from "../ffi/types.ts";
import {
  ffiBinding,
  nativeBinding,
  os,
  pidfileLimits,
  readEnvironment,
  runtime,
} from "../ffi/runtime.ts";
import { LockError } from "./errors.ts";
import { backendRequest, backendRequestProblem } from "./options.ts";
import { NAMESPACE_FIXES, namespaceUnknownReason } from "./pidfile/liveness.ts";
import type { BackendRequest, ProbeResult } from "./types.ts";

/** A request resolved to a backend; `binding` is absent for `pidfile`. */
export interface ResolvedBackend {
  readonly result: ProbeResult;
  readonly binding: Binding | undefined;
  /**
   * Chosen by `"auto"`, not asked for: a path on a filesystem without `flock`
   * may fall back to pidfile. An explicit request never falls back.
   */
  readonly mayFallBack: boolean;
}

const FFI_BACKEND: Record<typeof runtime, BackendName> = {
  deno: "deno-ffi",
  bun: "bun-ffi",
  node: "node-koffi",
};

const PIDFILE_LIMITS =
  "a lock file that names its holder, reclaimed when the holder is gone; it excludes only other pidfile users, not flock(2) users";

function limits(): string {
  const all = [...pidfileLimits()];
  const namespace = os === "linux" ? namespaceUnknownReason() : undefined;
  if (namespace !== undefined) {
    all.push(
      `${namespace}: it never judges by PID a record that names one (as those of Node, Bun, and Deno with --allow-all or --allow-ffi do), so a crashed holder of theirs stays in its way; ${NAMESPACE_FIXES}, or set staleMs`,
    );
  }
  return all.map((limit) => `; ${limit}`).join("");
}

/**
 * What `deno-native` leaves out without `--allow-sys=uid`: who the process is,
 * so the kernel attempt's refusal of a lock file another user planted in a
 * sticky world-writable directory is not made.
 */
function ownerCheckOff(binding: Binding): string {
  if (binding.backend !== "deno-native" || binding.userId !== undefined || os === "windows") {
    return "";
  }
  return "; without --allow-sys=uid it cannot tell which user it runs as, so a lock file another user planted in a sticky world-writable directory such as /tmp is not refused: run with --allow-sys=uid";
}

function unsupported(detail: string): LockError {
  return new LockError({ code: "EUNSUPPORTED", path: "", detail });
}

function resolved(
  backend: BackendName,
  reason: string,
  binding: Binding | undefined,
  mayFallBack = false,
): ResolvedBackend {
  return {
    result: { runtime, os, backend, degraded: backend === "pidfile", reason },
    binding,
    mayFallBack,
  };
}

let environmentRead = false;
let environmentValue: BackendRequest | undefined;

/** `FILELOCK_BACKEND`, read once per process. */
function environmentRequest(): BackendRequest | undefined {
  if (!environmentRead) {
    environmentValue = readEnvironmentRequest();
    environmentRead = true;
  }
  return environmentValue;
}

function readEnvironmentRequest(): BackendRequest | undefined {
  const value = readEnvironment("FILELOCK_BACKEND");
  if (value === undefined || value === "") return undefined;
  const problem = backendRequestProblem(value);
  if (problem !== undefined) throw unsupported(`FILELOCK_BACKEND ${problem}`);
  return value as BackendRequest;
}

function resolveUncached(request: BackendRequest): ResolvedBackend {
  const ffi = ffiBinding();
  if (request === "ffi") {
    if (ffi.binding === undefined) {
      throw unsupported(`the ffi backend was requested but ${ffi.reason}`);
    }
    return resolved(ffi.binding.backend, `requested ffi: ${ffi.reason}.`, ffi.binding);
  }
  if (request === "native") {
    const native = nativeBinding();
    if (native.binding === undefined) {
      throw unsupported(`the native backend was requested but ${native.reason}`);
    }
    return resolved(
      "deno-native",
      `requested native: ${native.reason}${ownerCheckOff(native.binding)}.`,
      native.binding,
    );
  }
  if (request === "pidfile") {
    return resolved("pidfile", `requested pidfile: ${PIDFILE_LIMITS}${limits()}.`, undefined);
  }
  if (ffi.binding !== undefined) {
    return resolved(
      ffi.binding.backend,
      `${ffi.reason}; this is the fastest lock here.`,
      ffi.binding,
      true,
    );
  }
  const native = nativeBinding();
  if (native.binding !== undefined) {
    return resolved(
      "deno-native",
      `${ffi.reason}, so ${native.reason}; run with --allow-ffi to use ${FFI_BACKEND[runtime]}${
        ownerCheckOff(native.binding)
      }.`,
      native.binding,
      true,
    );
  }
  return resolved(
    "pidfile",
    `${ffi.reason}, and no other kernel lock exists in ${runtime}: falling back to pidfile, ${PIDFILE_LIMITS}${limits()}.`,
    undefined,
    true,
  );
}

const cache = new Map<BackendRequest, ResolvedBackend>();
/** What a request without a backend resolves to: the hot path skips the lookups. */
let defaultResolved: ResolvedBackend | undefined;

/**
 * Resolves a request (option, else `FILELOCK_BACKEND`, else `"auto"`). An
 * explicit request that cannot be met throws `LockError` `EUNSUPPORTED`.
 */
export function resolveBackend(request: BackendRequest | undefined): ResolvedBackend {
  if (request === undefined && defaultResolved !== undefined) return defaultResolved;
  const effective = request !== undefined && request !== "auto"
    ? request
    : environmentRequest() ?? "auto";
  let found = cache.get(effective);
  if (found === undefined) {
    found = resolveUncached(effective);
    cache.set(effective, found);
  }
  if (request === undefined) defaultResolved = found;
  return found;
}

/** What `probe()` reports for `options.backend` (validated here). */
export function probeBackend(options: { backend?: BackendRequest } | undefined): ProbeResult {
  return { ...resolveBackend(backendRequest(options?.backend, "backend")).result };
}
