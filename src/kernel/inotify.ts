/**
 * Reading what inotify says about lock files: one descriptor per process for
 * async waiters, read when the kernel says it is readable (`SIGIO` in Node and
 * Bun, a `poll` on Deno's blocking pool), and one per thread for synchronous
 * waiters (a blocking `poll`). Both stay open between waits and close after a
 * while without waiters: closing an inotify descriptor waits for the kernel's
 * SRCU grace period (milliseconds), which must never delay a hand-off
 * (docs/architecture.md, "Waiting").
 *
 * @module
 */

import { type KernelEvents, LINUX_EVENTS as L } from "../../ffi/kernel_events.ts";
import { backgroundTimeout, onExit } from "../../ffi/node_process.ts";
import type { EncodedPath } from "../../ffi/types.ts";

/** What wakes a waiter: a writer's close (a release), the file going away or moving. */
export const WATCHED: number = L.IN_CLOSE_WRITE | L.IN_DELETE_SELF | L.IN_MOVE_SELF;

/** Whether a watch is set on what a path names now. */
export type Armed = "watched" | "gone" | "unwatched";

/**
 * For tests only (not exported from `mod.ts`): `keepSignalling` leaves
 * `O_ASYNC` on and the watches in place without waiters, and skips the close
 * at exit: the hazard a test shows (a process without a SIGIO listener dies
 * of the next release).
 */
export const inotifyTestHooks: { keepSignalling: boolean } = { keepSignalling: false };

/** How long a descriptor without waiters stays open for the next wait. */
export const IDLE_CLOSE_MS = 2000;

const EVENT_BUFFER = 4096;
const INOTIFY_EVENT_HEADER = 16;
const ENOENT = 2;

/** Calls `each(wd, mask)` for each event in `bytes[0, length)`. */
export function eachEvent(
  bytes: Uint8Array,
  length: number,
  each: (wd: number, mask: number) => void,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  for (let at = 0; at + INOTIFY_EVENT_HEADER <= length;) {
    each(view.getInt32(at, true), view.getUint32(at + 4, true));
    at += INOTIFY_EVENT_HEADER + view.getUint32(at + 12, true);
  }
}

/** The outcome of `inotify_add_watch` in words. */
export function armed(wd: number): Armed {
  return wd >= 0 ? "watched" : -wd === ENOENT ? "gone" : "unwatched";
}

/**
 * The async waiters' descriptor: `onEvent(wd, mask)` runs on the event loop
 * for each event while it listens (between `listen` and `idle`).
 */
export class AsyncInotify {
  readonly #events: KernelEvents;
  readonly #fd: number;
  readonly #buffer = new Uint8Array(EVENT_BUFFER);
  readonly #onEvent: (wd: number, mask: number) => void;
  readonly #onClosed: () => void;
  #closed = false;
  #listening = false;
  #stopListening: (() => void) | undefined;
  #cancelIdleClose: (() => void) | undefined;
  /** Deno: the eventfd that ends the background poll, and the poll's descriptors. */
  #stopFd = -1;
  #pollFds: Uint8Array | undefined;
  /** Deno: a poll is in flight on the blocking pool. */
  #polling = false;

  constructor(
    events: KernelEvents,
    fd: number,
    onEvent: (wd: number, mask: number) => void,
    onClosed: () => void,
  ) {
    this.#events = events;
    this.#fd = fd;
    this.#onEvent = onEvent;
    this.#onClosed = onClosed;
    if (events.onSigio !== undefined) {
      this.#signalWhenReadable(events.onSigio);
    } else {
      this.#stopFd = events.eventfd(0, L.EFD_NONBLOCK | L.EFD_CLOEXEC);
      if (this.#stopFd < 0) throw new Error("no eventfd for the background poll");
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `inotify_add_watch` of what `encoded` names now: its watch descriptor, or `-errno`. */
  addWatch(encoded: EncodedPath): number {
    return this.#events.addWatch(this.#fd, encoded, WATCHED);
  }

  /** `inotify_rm_watch` (cheap, unlike closing the descriptor). */
  removeWatch(wd: number): void {
    this.#events.removeWatch(this.#fd, wd);
  }

  /** Starts reading events (waiters came). */
  listen(): void {
    this.#cancelIdleClose?.();
    this.#cancelIdleClose = undefined;
    if (this.#listening) return;
    this.#listening = true;
    if (this.#stopFd >= 0) {
      this.#pollInBackground();
    } else {
      this.#signalling(true);
      // Events queued while nobody listened are read now: an unread event absorbs identical
      // later ones (inotify merges them), and those would then raise no SIGIO at all.
      this.#drain();
    }
  }

  /** Stops reading (no waiters left), and closes after a while unless waiters come back. */
  idle(): void {
    if (!this.#listening) return;
    this.#listening = false;
    // Deno: the pending poll would keep the process alive; wake it to end.
    if (this.#stopFd >= 0) this.#events.write(this.#stopFd, ONE);
    // Node and Bun: no signal while nobody waits (an exit in between would die of it).
    else if (!inotifyTestHooks.keepSignalling) this.#signalling(false);
    this.#cancelIdleClose = backgroundTimeout(() => this.close(), IDLE_CLOSE_MS);
  }

  /** Turns `O_ASYNC` (a `SIGIO` when readable) on or off. */
  #signalling(on: boolean): void {
    const events = this.#events;
    const flags = events.fcntl(this.#fd, L.F_GETFL, 0);
    if (flags < 0) return;
    events.fcntl(this.#fd, L.F_SETFL, on ? flags | L.O_ASYNC : flags & ~L.O_ASYNC);
  }

  #drain = (): void => {
    if (this.#closed) return;
    for (;;) {
      const length = this.#events.read(this.#fd, this.#buffer);
      if (length <= 0) return; // -EAGAIN: nothing more
      eachEvent(this.#buffer, length, this.#onEvent);
    }
  };

  /**
   * Node and Bun: the kernel sends this process `SIGIO` when the descriptor
   * becomes readable. The listener is in place before the descriptor asks
   * for signals and goes only after it is closed (SIGIO's default kills).
   */
  #signalWhenReadable(onSigio: (handler: () => void) => () => void): void {
    const events = this.#events;
    const stop = onSigio(this.#drain);
    if (events.fcntl(this.#fd, L.F_SETOWN, events.getpid()) < 0) {
      stop();
      throw new Error("the inotify descriptor cannot signal this process");
    }
    this.#stopListening = stop;
    // A process exiting while it waits: the runtime drops its signal handlers
    // on the way out, and a SIGIO then would kill it. No descriptor, no signal.
    if (!inotifyTestHooks.keepSignalling) closeAtExit(this);
  }

  /** Deno: one `poll` of the descriptor and the eventfd on the blocking pool while listening. */
  #pollInBackground(): void {
    // One poll at a time: listening again before the last poll's answer was read must not
    // park a second thread (Deno's blocking pool is shared with its file operations).
    if (this.#polling) return;
    this.#polling = true;
    const events = this.#events;
    const fds = this.#pollFds ??= pollFds([this.#fd, this.#stopFd]);
    const view = new DataView(fds.buffer);
    view.setInt16(6, 0, true);
    view.setInt16(14, 0, true);
    void events.pollInBackground!(fds, 2, -1).then(() => {
      this.#polling = false;
      if (this.#closed) {
        // Closed while the poll ran: its descriptors go now that nothing polls them.
        this.#closeDescriptors();
        return;
      }
      while (events.read(this.#stopFd, EIGHT) > 0) { /* drained */ }
      this.#drain();
      if (this.#listening) this.#pollInBackground();
    });
  }

  #closeDescriptors(): void {
    this.#events.close(this.#fd);
    if (this.#stopFd >= 0) this.#events.close(this.#stopFd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listening = false;
    this.#cancelIdleClose?.();
    if (this.#polling) this.#events.write(this.#stopFd, ONE); // the poll closes them
    else this.#closeDescriptors();
    const stop = this.#stopListening;
    // A signal already on its way is handled before the listener goes.
    if (stop !== undefined) backgroundTimeout(stop, 0);
    this.#onClosed();
  }
}

let exiting: AsyncInotify | undefined;

let exitHooked = false;

/** Closes `source` (the process's current one) when the process exits. */
function closeAtExit(source: AsyncInotify): void {
  exiting = source;
  if (exitHooked) return;
  exitHooked = true;
  onExit(() => exiting?.close());
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const EIGHT = new Uint8Array(8);

/** `struct pollfd` for each descriptor, asking for input. */
function pollFds(fds: number[]): Uint8Array {
  const bytes = new Uint8Array(8 * fds.length);
  const view = new DataView(bytes.buffer);
  fds.forEach((fd, i) => {
    view.setInt32(8 * i, fd, true);
    view.setInt16(8 * i + 4, L.POLLIN, true);
  });
  return bytes;
}

/**
 * A synchronous waiter's descriptor (one per thread, kept between waits):
 * `arm` watches the path, `sleep` blocks in `poll` until an event or `ms`.
 */
export class SyncInotify {
  readonly #events: KernelEvents;
  readonly #fd: number;
  readonly #fds: Uint8Array;
  readonly #buffer = new Uint8Array(EVENT_BUFFER);
  #cancelIdleClose: (() => void) | undefined;
  #closed = false;
  /** The watches of the wait under way. */
  readonly #watches = new Set<number>();

  constructor(events: KernelEvents, fd: number) {
    this.#events = events;
    this.#fd = fd;
    this.#fds = pollFds([fd]);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts a wait: events from earlier waits are dropped. */
  begin(): void {
    this.#cancelIdleClose?.();
    this.#cancelIdleClose = undefined;
    this.#drain();
  }

  arm(encoded: EncodedPath): Armed {
    const wd = this.#events.addWatch(this.#fd, encoded, WATCHED);
    if (wd >= 0) this.#watches.add(wd);
    return armed(wd);
  }

  /** Blocks until an event (`true`) or `ms` (`false`). */
  sleep(ms: number): boolean {
    new DataView(this.#fds.buffer).setInt16(6, 0, true);
    const ready = this.#events.poll(this.#fds, 1, Math.max(0, Math.ceil(ms)));
    if (ready <= 0) return false;
    this.#drain();
    return true;
  }

  /** Ends a wait; the descriptor closes after a while unless another wait comes. */
  end(): void {
    // The next wait, on whatever path, must not be woken by this one's file.
    for (const wd of this.#watches) this.#events.removeWatch(this.#fd, wd);
    this.#watches.clear();
    this.#cancelIdleClose = backgroundTimeout(() => this.close(), IDLE_CLOSE_MS);
  }

  #drain(): void {
    while (this.#events.read(this.#fd, this.#buffer) > 0) { /* any event is a wake-up */ }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#events.close(this.#fd);
  }
}
