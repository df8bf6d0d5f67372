/**
 * The pidfile locks this process holds: their heartbeat, and their removal
 * when the process exits, or when it is about to die of SIGINT/SIGTERM and
 * nobody else handles the signal (best effort, once).
 *
 * @module
 */

import { runtime } from "../../ffi/runtime.ts";
import {
  addFirstSignalListener,
  backgroundTimer,
  dieOfSignal,
  type ExitSignal,
  onExit,
  removeSignalListener,
  signalListeners,
} from "../../ffi/node_process.ts";
import { pidfileTestHooks } from "./test_hooks.ts";

/** What the registry needs of a held lock. */
export interface TrackedLock {
  readonly heartbeatMs: number;
  heartbeat(now: number): void;
  releaseSync(): void;
}

const held = new Set<TrackedLock>();
let stopTimer: (() => void) | undefined;
let timerPeriod = Infinity;
let hooked = false;
/** Whether the broken variant of `pidfileTestHooks.legacySignals` has its listeners in. */
let legacyInstalled = false;
const SIGNALS: readonly ExitSignal[] = ["SIGINT", "SIGTERM"];

function beat(): void {
  const now = Date.now();
  for (const lock of held) lock.heartbeat(now);
}

function releaseAll(): void {
  for (const lock of [...held]) {
    try {
      lock.releaseSync();
    } catch {
      // Best effort on the way out: one failure must not keep the others.
    }
  }
}

/**
 * Our listener runs first (it is prepended). With any other listener the
 * program handles the signal and may go on: it keeps its locks (and an exit
 * it makes runs the exit cleanup). Alone, it is the default action that is
 * coming: remove the locks, then die of the signal as if we had never
 * listened.
 */
function onSignal(signal: ExitSignal): void {
  if (signalListeners(signal) > 1 && !pidfileTestHooks.legacySignals) return;
  releaseAll();
  removeSignalListener(signal, listeners[signal]);
  dieOfSignal(signal);
}

const listeners: Record<ExitSignal, () => void> = {
  SIGINT: () => onSignal("SIGINT"),
  SIGTERM: () => onSignal("SIGTERM"),
};

/**
 * Installs the exit hook and the signal listeners once per process, and
 * never removes them (adding and removing them per lock leaked memory in Deno
 * and Node). Not in Deno: its `Deno.addSignalListener` listeners cannot be
 * counted, so a signal that the program handles could not be told from one
 * that ends it. There a holder that dies of a signal leaves its record, which
 * the next acquire on this host reclaims at once (its process is gone).
 */
function hook(): void {
  if (!hooked) {
    hooked = true;
    onExit(releaseAll);
    if (runtime !== "deno" && !pidfileTestHooks.legacySignals) installSignalListeners();
  }
  if (pidfileTestHooks.legacySignals && !legacyInstalled) {
    legacyInstalled = true;
    installSignalListeners();
  }
}

/** Adds our SIGINT and SIGTERM listeners, counted in `pidfileTestHooks.signalInstalls`. */
function installSignalListeners(): void {
  for (const signal of SIGNALS) {
    try {
      addFirstSignalListener(signal, listeners[signal]);
      pidfileTestHooks.signalInstalls++;
    } catch {
      // A runtime without this signal (Windows SIGTERM in some): exit still cleans up.
    }
  }
}

/** The broken variant's removal with the last lock (`pidfileTestHooks.legacySignals`). */
function removeLegacyListeners(): void {
  if (!legacyInstalled) return;
  legacyInstalled = false;
  for (const signal of SIGNALS) removeSignalListener(signal, listeners[signal]);
}

/** Starts tracking a newly held lock. */
export function track(lock: TrackedLock): void {
  held.add(lock);
  hook();
  if (lock.heartbeatMs < timerPeriod) {
    stopTimer?.();
    timerPeriod = lock.heartbeatMs;
    stopTimer = backgroundTimer(beat, timerPeriod);
  }
}

/** Stops tracking a released lock; with none left, no timer remains. */
export function untrack(lock: TrackedLock): void {
  held.delete(lock);
  if (held.size > 0) return;
  stopTimer?.();
  stopTimer = undefined;
  timerPeriod = Infinity;
  removeLegacyListeners();
}
