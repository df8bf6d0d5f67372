/**
 * Whether the process a pidfile record names is still the process that wrote
 * it: signal 0 (or /proc) says whether the PID is in use, and the start token
 * says whether it is still the same process (PIDs are reused).
 *
 * @module
 */

import { ffiBinding, os } from "../../ffi/runtime.ts";
import { readLink, readSystemText } from "../../ffi/node_fs.ts";
import { processId, signalZero } from "../../ffi/node_process.ts";

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
    bootId = readSystemText("/proc/sys/kernel/random/boot_id")?.trim() || undefined;
  }
  return bootId;
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
    reason: "this process may not signal others (Deno needs --allow-run, or read access to /proc)",
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
 * (Linux, where /proc is readable), or `undefined`. PIDs mean something only
 * within one namespace: a record from another (a container sharing the host
 * name and the filesystem, `unshare -p`) is judged like one from another host.
 */
export function ownPidNamespace(): string | undefined {
  if (testHooks.noNamespace) return undefined;
  if (ownNamespace === null) {
    const link = os === "linux" ? readLink("/proc/self/ns/pid") : undefined;
    const inode = link === undefined ? undefined : /^pid:\[(\d+)\]$/.exec(link)?.[1];
    const boot = readBootId();
    ownNamespace = inode === undefined || boot === undefined ? undefined : `${inode}@${boot}`;
  }
  return ownNamespace;
}
