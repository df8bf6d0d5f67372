/**
 * The pidfile locks this process holds: their heartbeat, and their removal
 * when the process exits or dies of SIGINT/SIGTERM (best effort, once).
 *
 * @module
 */

import {
  addSignalListener,
  backgroundTimer,
  dieOfSignal,
  type ExitSignal,
  onExit,
  removeSignalListener,
  signalListeners,
} from "../../ffi/node_process.ts";

/** What the registry needs of a held lock. */
export interface TrackedLock {
  readonly heartbeatMs: number;
  heartbeat(now: number): void;
  releaseSync(): void;
}

const held = new Set<TrackedLock>();
let stopTimer: (() => void) | undefined;
let timerPeriod = Infinity;
let exitHooked = false;
let signalsHooked = false;
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

function onSignal(signal: ExitSignal): void {
  // Someone else handles this signal: the process may go on, and holds its locks.
  if (signalListeners(signal) > 1) return;
  releaseAll();
  unhookSignals();
  dieOfSignal(signal);
}

const listeners: Record<ExitSignal, () => void> = {
  SIGINT: () => onSignal("SIGINT"),
  SIGTERM: () => onSignal("SIGTERM"),
};

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const signal of SIGNALS) {
    try {
      addSignalListener(signal, listeners[signal]);
    } catch {
      // A runtime without this signal (Windows SIGTERM in some): exit still cleans up.
    }
  }
}

function unhookSignals(): void {
  if (!signalsHooked) return;
  signalsHooked = false;
  for (const signal of SIGNALS) {
    try {
      removeSignalListener(signal, listeners[signal]);
    } catch {
      // Never added.
    }
  }
}

/** Starts tracking a newly held lock. */
export function track(lock: TrackedLock): void {
  held.add(lock);
  if (!exitHooked) {
    exitHooked = true;
    onExit(releaseAll);
  }
  hookSignals();
  if (lock.heartbeatMs < timerPeriod) {
    stopTimer?.();
    timerPeriod = lock.heartbeatMs;
    stopTimer = backgroundTimer(beat, timerPeriod);
  }
}

/** Stops tracking a released lock; with none left, no timer and no signal listeners remain. */
export function untrack(lock: TrackedLock): void {
  held.delete(lock);
  if (held.size > 0) return;
  stopTimer?.();
  stopTimer = undefined;
  timerPeriod = Infinity;
  unhookSignals();
}
