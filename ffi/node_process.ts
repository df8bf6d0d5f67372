/**
 * The process calls of the pidfile backend, through `node:process` and
 * `node:os`, which Deno, Bun and Node all implement, loaded on first use
 * (`./builtins.ts`): this process's id and host, signal 0 to another process,
 * exit and signal listeners, and timers that do not keep the process alive.
 *
 * @module
 */

import type * as NodeOs from "node:os";
import { builtin, unrefTimer } from "./builtins.ts";
import { readSystemText } from "./node_fs.ts";

/** The part of `node:process` used here. */
interface ProcessLike {
  readonly pid: number;
  kill(pid: number, signal: string | number): boolean;
  exit(code: number): never;
  cwd(): string;
  on(event: string, handler: () => void): unknown;
  off(event: string, handler: () => void): unknown;
  prependListener(event: string, handler: () => void): unknown;
  listenerCount(event: string): number;
}

let loaded: ProcessLike | undefined;
const process = (): ProcessLike => loaded ??= builtin<ProcessLike>("node:process");
const deno = (globalThis as { Deno?: { pid: number; cwd(): string } }).Deno;

/** This process's id (Deno's own, so that a kernel lock loads no `node:` module there). */
export const processId: number = deno !== undefined ? deno.pid : process().pid;

/** The host's name, or `undefined` when the runtime does not let us read it. */
export function hostName(): string | undefined {
  try {
    return builtin<typeof NodeOs>("node:os").hostname();
  } catch {
    // Deno without --allow-sys: the kernel's copy, where /proc is readable.
    return readSystemText("/proc/sys/kernel/hostname")?.trim() || undefined;
  }
}

/**
 * Signal 0 to `pid`: `"alive"` when it reaches a process (or is refused with
 * EPERM), `"dead"` on ESRCH, `"unknown"` when the runtime does not let us ask.
 */
export function signalZero(pid: number): "alive" | "dead" | "unknown" {
  try {
    process().kill(pid, 0);
    return "alive";
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    if (code === "ESRCH") return "dead";
    if (code === "EPERM") return "alive";
    return "unknown";
  }
}

/** The signals after which a process removes the pidfile locks it holds. */
export type ExitSignal = "SIGINT" | "SIGTERM";

const SIGNAL_NUMBERS: Record<ExitSignal, number> = { SIGINT: 2, SIGTERM: 15 };

/** Calls `handler` once when the process exits normally. */
export function onExit(handler: () => void): void {
  process().on("exit", handler);
}

/**
 * Adds a listener for `signal` that runs before every listener added so far
 * (a `once` listener removes itself before it runs: ours must see it).
 */
export function addFirstSignalListener(signal: ExitSignal, handler: () => void): void {
  process().prependListener(signal, handler);
}

/** Removes a listener for `signal`. */
export function removeSignalListener(signal: ExitSignal, handler: () => void): void {
  process().off(signal, handler);
}

/** How many listeners `signal` has in this process. */
export function signalListeners(signal: ExitSignal): number {
  return process().listenerCount(signal);
}

/**
 * Dies of `signal` as if no listener had been installed: re-raises it, or
 * where the runtime refuses (Deno without --allow-run) exits with 128 + N.
 */
export function dieOfSignal(signal: ExitSignal): void {
  try {
    process().kill(processId, signal);
  } catch {
    process().exit(128 + SIGNAL_NUMBERS[signal]);
  }
}

/** Runs `fn` every `ms` on a timer that does not keep the process alive; returns a stop function. */
export function backgroundTimer(fn: () => void, ms: number): () => void {
  const timer = setInterval(fn, ms);
  unrefTimer(timer);
  return () => clearInterval(timer);
}

/** Runs `fn` once after `ms` on a timer that does not keep the process alive; returns a cancel function. */
export function backgroundTimeout(fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms);
  unrefTimer(timer);
  return () => clearTimeout(timer);
}

/** The working directory, which relative lock paths are resolved against. */
export function workingDirectory(): string {
  return deno !== undefined ? deno.cwd() : process().cwd();
}
