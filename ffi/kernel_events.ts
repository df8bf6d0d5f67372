/**
 * The calls that let a waiter sleep until the kernel says a lock file was let
 * go (Linux's inotify), bound in each runtime's own FFI dialect, separately
 * from the lock's own binding and only when a wait needs them. Each call is
 * one syscall and reports `-errno`; `src/kernel/wakeups.ts` decides what to
 * do with them (docs/architecture.md, "Waiting").
 *
 * @module
 */

import { requireModule } from "./require.ts";
import { os, runtime } from "./runtime.ts";
import type { EncodedPath } from "./types.ts";
import type { BunFfi } from "./bun.ts";
import type { Koffi } from "./node.ts";

/** Linux's numbers for these calls (the same on x86_64 and aarch64). */
export const LINUX_EVENTS = {
  IN_NONBLOCK: 0o4000,
  IN_CLOEXEC: 0o2000000,
  /** A descriptor opened for writing was closed: how a holder's release shows. */
  IN_CLOSE_WRITE: 0x8,
  IN_ATTRIB: 0x4,
  IN_MOVE_SELF: 0x800,
  IN_DELETE_SELF: 0x400,
  /** The watch is gone (its file deleted, or removed). */
  IN_IGNORED: 0x8000,
  /** Events were lost: wake everyone. */
  IN_Q_OVERFLOW: 0x4000,
  EFD_NONBLOCK: 0o4000,
  EFD_CLOEXEC: 0o2000000,
  POLLIN: 0x1,
  F_GETFL: 3,
  F_SETFL: 4,
  F_SETOWN: 8,
  O_ASYNC: 0o20000,
  /** `struct timespec.tv_nsec` values of `futimens`. */
  UTIME_NOW: (1 << 30) - 1,
  UTIME_OMIT: (1 << 30) - 2,
  EINTR: 4,
  EAGAIN: 11,
} as const;

/** One call, one syscall: a result or `-errno`. */
export interface KernelEvents {
  /** `inotify_init1(flags)`. */
  inotifyInit(flags: number): number;
  /** `inotify_add_watch(fd, path, mask)`: a watch descriptor. */
  addWatch(fd: number, path: EncodedPath, mask: number): number;
  /** `inotify_rm_watch(fd, wd)`. */
  removeWatch(fd: number, wd: number): number;
  /** `read(fd, buffer, length)`: bytes read. */
  read(fd: number, buffer: Uint8Array): number;
  /** `write(fd, buffer, length)`: bytes written. */
  write(fd: number, buffer: Uint8Array): number;
  /** `poll(fds, count, timeout)` on the calling thread. */
  poll(fds: Uint8Array, count: number, timeoutMs: number): number;
  /**
   * The same `poll` on a thread of the runtime's blocking pool, where the
   * runtime has one for FFI calls (Deno's `nonblocking`); it cannot be
   * cancelled, only woken through a descriptor it polls.
   */
  pollInBackground?(fds: Uint8Array, count: number, timeoutMs: number): Promise<number>;
  /** `eventfd(initial, flags)`. */
  eventfd(initial: number, flags: number): number;
  /** `fcntl(fd, cmd, arg)` with an integer argument. */
  fcntl(fd: number, cmd: number, arg: number): number;
  /** `getpid()`. */
  getpid(): number;
  /** `futimens(fd, times)`: `times` is two `struct timespec` (32 bytes). */
  futimens(fd: number, times: Uint8Array): number;
  /** `close(fd)`. */
  close(fd: number): number;
  /**
   * Node and Bun: runs `handler` on the event loop whenever this process gets
   * `SIGIO`; returns what removes it. Absent in Deno (`pollInBackground`).
   */
  onSigio?(handler: () => void): () => void;
}

/** The `process` global of Node and Bun (not imported: Deno never loads `node:process` for this). */
interface SignalTarget {
  on(signal: "SIGIO", handler: () => void): unknown;
  off(signal: "SIGIO", handler: () => void): unknown;
}

/** `SIGIO` listeners on Node's and Bun's `process` (signals reach the main thread only). */
function onSigio(handler: () => void): () => void {
  const target = (globalThis as unknown as { process: SignalTarget }).process;
  target.on("SIGIO", handler);
  return () => target.off("SIGIO", handler);
}

/** The libc to bind, and where errno lives (glibc and musl). */
const LIBRARIES = ["libc.so.6", "libc.so"] as const;

function firstLibrary<T>(bind: (library: string) => T): T {
  let failure: unknown;
  for (const library of LIBRARIES) {
    try {
      return bind(library);
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

const toNumber = (value: number | bigint): number => Number(value);

/** The calls through `Deno.dlopen` (needs the same `--allow-ffi` as the lock's binding). */
export function denoKernelEvents(): KernelEvents {
  const s = firstLibrary((library) =>
    Deno.dlopen(library, {
      inotify_init1: { parameters: ["i32"], result: "i32" },
      inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" },
      inotify_rm_watch: { parameters: ["i32", "i32"], result: "i32" },
      read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
      write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
      poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
      pollInBackground: {
        name: "poll",
        parameters: ["buffer", "u64", "i32"],
        result: "i32",
        nonblocking: true,
      },
      eventfd: { parameters: ["u32", "i32"], result: "i32" },
      fcntl: { parameters: ["i32", "i32", "i64"], result: "i32" },
      getpid: { parameters: [], result: "i32" },
      futimens: { parameters: ["i32", "buffer"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      errno: { name: "__errno_location", parameters: [], result: "pointer" },
    }).symbols
  );
  const errnoPointer = s.errno();
  if (errnoPointer === null) throw new Error("errno location is NULL");
  const errnoView = new Deno.UnsafePointerView(errnoPointer);
  const checked = (result: number): number => result >= 0 ? result : -errnoView.getInt32(0);
  return {
    inotifyInit: (flags) => checked(s.inotify_init1(flags)),
    addWatch: (fd, path, mask) => checked(s.inotify_add_watch(fd, path as Uint8Array, mask)),
    removeWatch: (fd, wd) => checked(s.inotify_rm_watch(fd, wd)),
    read: (fd, buffer) => checked(toNumber(s.read(fd, buffer, BigInt(buffer.length)))),
    write: (fd, buffer) => checked(toNumber(s.write(fd, buffer, BigInt(buffer.length)))),
    poll: (fds, count, timeoutMs) => checked(s.poll(fds, BigInt(count), timeoutMs)),
    // errno is another thread's after a nonblocking call: the result alone is reported.
    pollInBackground: (fds, count, timeoutMs) => s.pollInBackground(fds, BigInt(count), timeoutMs),
    eventfd: (initial, flags) => checked(s.eventfd(initial, flags)),
    fcntl: (fd, cmd, arg) => checked(s.fcntl(fd, cmd, BigInt(arg))),
    getpid: () => s.getpid(),
    futimens: (fd, times) => checked(s.futimens(fd, times)),
    close: (fd) => checked(s.close(fd)),
  };
}

/** The calls through `bun:ffi`. */
export function bunKernelEvents(): KernelEvents {
  const ffi = requireModule<BunFfi>("bun:ffi");
  const s = firstLibrary((library) =>
    ffi.dlopen(library, {
      inotify_init1: { args: ["i32"], returns: "i32" },
      inotify_add_watch: { args: ["i32", "ptr", "u32"], returns: "i32" },
      inotify_rm_watch: { args: ["i32", "i32"], returns: "i32" },
      read: { args: ["i32", "ptr", "u64"], returns: "i64_fast" },
      write: { args: ["i32", "ptr", "u64"], returns: "i64_fast" },
      poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
      eventfd: { args: ["u32", "i32"], returns: "i32" },
      fcntl: { args: ["i32", "i32", "i64"], returns: "i32" },
      getpid: { args: [], returns: "i32" },
      futimens: { args: ["i32", "ptr"], returns: "i32" },
      close: { args: ["i32"], returns: "i32" },
      __errno_location: { args: [], returns: "ptr" },
    }).symbols
  );
  const call = s as Record<string, (...args: unknown[]) => number>;
  const errno = new Int32Array(ffi.toArrayBuffer(call.__errno_location(), 0, 4));
  const checked = (result: number): number => result >= 0 ? result : -errno[0];
  return {
    inotifyInit: (flags) => checked(call.inotify_init1(flags)),
    addWatch: (fd, path, mask) => checked(call.inotify_add_watch(fd, path, mask)),
    removeWatch: (fd, wd) => checked(call.inotify_rm_watch(fd, wd)),
    read: (fd, buffer) => checked(Number(call.read(fd, buffer, buffer.length))),
    write: (fd, buffer) => checked(Number(call.write(fd, buffer, buffer.length))),
    poll: (fds, count, timeoutMs) => checked(call.poll(fds, count, timeoutMs)),
    eventfd: (initial, flags) => checked(call.eventfd(initial, flags)),
    fcntl: (fd, cmd, arg) => checked(call.fcntl(fd, cmd, arg)),
    getpid: () => call.getpid(),
    futimens: (fd, times) => checked(call.futimens(fd, times)),
    close: (fd) => checked(call.close(fd)),
    onSigio,
  };
}

/** The calls through koffi, on the calling thread (never on libuv's pool). */
export function nodeKernelEvents(): KernelEvents {
  const koffi = requireModule<Koffi>("koffi");
  const lib = firstLibrary((library) => koffi.load(library));
  const fn = (declaration: string) => lib.func(declaration) as (...args: unknown[]) => number;
  const inotifyInit = fn("int inotify_init1(int flags)");
  const addWatch = fn("int inotify_add_watch(int fd, const void *path, uint32_t mask)");
  const removeWatch = fn("int inotify_rm_watch(int fd, int wd)");
  const read = fn("intptr_t read(int fd, void *buffer, size_t length)");
  const write = fn("intptr_t write(int fd, const void *buffer, size_t length)");
  const poll = fn("int poll(void *fds, uint64_t count, int timeout)");
  const eventfd = fn("int eventfd(uint32_t initial, int flags)");
  const fcntl = fn("int fcntl(int fd, int cmd, int64_t arg)");
  const getpid = fn("int getpid()");
  const futimens = fn("int futimens(int fd, const void *times)");
  const close = fn("int close(int fd)");
  const checked = (result: number): number => result >= 0 ? result : -koffi.errno();
  return {
    inotifyInit: (flags) => checked(inotifyInit(flags)),
    addWatch: (fd, path, mask) => checked(addWatch(fd, path, mask)),
    removeWatch: (fd, wd) => checked(removeWatch(fd, wd)),
    read: (fd, buffer) => checked(Number(read(fd, buffer, buffer.length))),
    write: (fd, buffer) => checked(Number(write(fd, buffer, buffer.length))),
    poll: (fds, count, timeoutMs) => checked(poll(fds, count, timeoutMs)),
    eventfd: (initial, flags) => checked(eventfd(initial, flags)),
    fcntl: (fd, cmd, arg) => checked(fcntl(fd, cmd, arg)),
    getpid: () => getpid(),
    futimens: (fd, times) => checked(futimens(fd, times)),
    close: (fd) => checked(close(fd)),
    onSigio,
  };
}

/**
 * This runtime's inotify calls, or `undefined` where a waiter cannot be woken
 * by the kernel: not Linux, no FFI (Deno without `--allow-ffi`, Node without
 * koffi), or a Node/Bun Worker (signals reach the main thread only).
 */
export function loadKernelEvents(): KernelEvents | undefined {
  if (os !== "linux") return undefined;
  try {
    if (runtime === "deno") {
      const permitted = LIBRARIES.some((library) =>
        Deno.permissions.querySync({ name: "ffi", path: library }).state === "granted"
      );
      return permitted ? denoKernelEvents() : undefined;
    }
    const { isMainThread } = requireModule<{ isMainThread: boolean }>("node:worker_threads");
    if (!isMainThread) return undefined;
    return runtime === "bun" ? bunKernelEvents() : nodeKernelEvents();
  } catch {
    return undefined;
  }
}
