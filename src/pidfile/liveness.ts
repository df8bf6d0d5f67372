/**
 * Whether the process a pidfile record names is still the process that wrote
 * it: signal 0 (or /proc) says whether the PID is in use, and the start token
 * says whether it is still the same process (PIDs are reused).
 *
 * @module
 */

import { ffiBinding, os, runtime } from "../../ffi/runtime.ts";
import { readThroughBinding } from "../binding_text.ts";
import { readLink, readSystemText } from "../../ffi/node_fs.ts";
import { processId, signalZero } from "../../ffi/node_process.ts";
import { newIdentity } from "../../ffi/types.ts";

/** What this process can learn about another one. */
export interface ProcessState {
  /** `true` alive, `false` dead, `undefined` unknowable here. */
  readonly alive: boolean | undefined;
  /** The process's start token, when readable. */
  readonly startToken: string | undefined;
  /** Why, in a few words. */
  readonly reason: string;
}

let bootId: string | undefined | null = null;

function readBootId(): string | undefined {
  if (bootId === null) {
    const path = "/proc/sys/kernel/random/boot_id";
    bootId = (readSystemText(path) ?? readThroughBinding(denoFfi(), path, 256))?.trim() ||
      undefined;
  }
  return bootId;
}

/**
 * The FFI binding where Deno refuses /proc to its file APIs (it opens /proc
 * only under --allow-all) but grants FFI: the binding's own `open` is not
 * subject to Deno's file permissions. `undefined` elsewhere.
 */
function denoFfi(): ReturnType<typeof ffiBinding>["binding"] {
  return runtime === "deno" && os === "linux" ? ffiBinding().binding : undefined;
}

/**
 * The inode of `/proc/self/ns/pid` through the FFI binding: `fstat` of the
 * namespace file is the number its link names (`pid:[N]`).
 */
function namespaceInodeThroughFfi(): string | undefined {
  const binding = denoFfi();
  if (binding === undefined) return undefined;
  const c = binding.constants;
  const fd = binding.open(binding.encodePath("/proc/self/ns/pid"), c.O_RDONLY | c.O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const identity = newIdentity();
    if (binding.fstat(fd, identity) !== 0) return undefined;
    return String(identity[3] * 2 ** 32 + identity[2]);
  } finally {
    binding.close(fd);
  }
}

/** Fields of `/proc/<pid>/stat` after the command name, which may hold spaces and parens. */
function statFields(pid: number): string[] | undefined {
  const text = readSystemText(`/proc/${pid}/stat`, 4096);
  if (text === undefined) return undefined;
  const end = text.lastIndexOf(")");
  if (end < 0) return undefined;
  // Field 3 (state) is the first after the name; field 22 (starttime) is the 20th.
  return text.slice(end + 2).split(" ");
}

let procfs: boolean | undefined;

/** Whether /proc describes processes here (Linux, with read access in Deno). */
function hasProcfs(): boolean {
  return procfs ??= os === "linux" && statFields(processId) !== undefined;
}

function tokenFrom(fields: string[]): string | undefined {
  const boot = readBootId();
  const start = fields[19];
  return boot === undefined || start === undefined ? undefined : `${start}@${boot}`;
}

/** The state of process `pid`, read from /proc where possible, else by signal 0. */
export function processState(pid: number): ProcessState {
  if (hasProcfs()) {
    const fields = statFields(pid);
    if (fields === undefined) {
      return { alive: false, startToken: undefined, reason: "no such process" };
    }
    // A zombie has closed its files and will never release anything.
    if (fields[0] === "Z" || fields[0] === "X") {
      return { alive: false, startToken: undefined, reason: "the process has exited" };
    }
    return { alive: true, startToken: tokenFrom(fields), reason: "running" };
  }
  const signal = signalZero(pid);
  if (signal === "dead") return { alive: false, startToken: undefined, reason: "no such process" };
  if (signal === "alive") return { alive: true, startToken: bindingToken(pid), reason: "running" };
  return {
    alive: undefined,
    startToken: undefined,
    reason:
      "this process may not signal others, nor read /proc (Deno needs --allow-run or --allow-all)",
  };
}

/** The process's creation time through the FFI binding, where the OS has no /proc (Windows, macOS). */
function bindingToken(pid: number): string | undefined {
  return ffiBinding().binding?.processStartTime?.(pid);
}

let ownToken: { token: string | undefined; note: string | undefined } | undefined;

/**
 * This process's start token, or why there is none (said in the record, so
 * that a reader knows a reused PID cannot be told apart).
 */
export function ownStartToken(): { token: string | undefined; note: string | undefined } {
  if (ownToken === undefined) {
    const token = hasProcfs() ? processState(processId).startToken : bindingToken(processId);
    ownToken = token !== undefined ? { token, note: undefined } : {
      token: undefined,
      note: os === "linux"
        ? "no start token: /proc is not readable here"
        : os === "windows" || os === "darwin"
        ? `no start token: reading a process start time on ${os} needs the FFI backend`
        : `no start token: reading a process start time on ${os} is not implemented`,
    };
  }
  return ownToken;
}

/**
 * Hooks for tests only: not exported from `mod.ts`. `noNamespace` makes this
 * process write records without a PID namespace, as a writer that cannot
 * read /proc does (the case the namespace check cannot cover).
 */
export const testHooks: { noNamespace: boolean } = { noNamespace: false };

let ownNamespace: string | undefined | null = null;

/**
 * This process's PID namespace, as `<inode of /proc/self/ns/pid>@<boot id>`
 * (Linux, where /proc is readable: in Deno under --allow-all, or through FFI
 * under --allow-ffi), or `undefined`. PIDs mean something only within one
 * namespace: a record from another (a container sharing the host name and
 * the filesystem, `unshare -p`) is judged like one from another host.
 */
export function ownPidNamespace(): string | undefined {
  if (testHooks.noNamespace) return undefined;
  if (ownNamespace === null) {
    const link = os === "linux" ? readLink("/proc/self/ns/pid") : undefined;
    const inode = link === undefined
      ? (os === "linux" ? namespaceInodeThroughFfi() : undefined)
      : /^pid:\[(\d+)\]$/.exec(link)?.[1];
    const boot = readBootId();
    ownNamespace = inode === undefined || boot === undefined ? undefined : `${inode}@${boot}`;
  }
  return ownNamespace;
}

/**
 * Why this process cannot tell its PID namespace, in words a user can act
 * on; `undefined` where it can. Such a process never judges a record that
 * names a namespace by its PID: it could be another namespace's.
 */
export function namespaceUnknownReason(): string | undefined {
  if (ownPidNamespace() !== undefined) return undefined;
  return runtime === "deno"
    ? "this Deno process cannot tell its PID namespace (Deno opens /proc only under --allow-all, and without --allow-ffi it cannot read /proc/self/ns/pid through FFI)"
    : "this process cannot tell its PID namespace (/proc/self/ns/pid is not readable)";
}

/** What lets a process that cannot tell its PID namespace judge records that name one. */
export const NAMESPACE_FIXES: string = runtime === "deno"
  ? "run Deno with --allow-all, or with --allow-ffi"
  : "make /proc/self/ns/pid readable";
