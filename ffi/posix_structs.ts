/**
 * The bytes libc takes and fills in: C strings, and the raw structs (`struct
 * stat`, `struct statfs`, macOS's `struct proc_bsdinfo`) read with the per-OS
 * layouts of `posix_tables.ts`. Pure: no call is made here.
 *
 * @module
 */

import type { FileIdentity, FileKind, FilesystemInfo } from "./types.ts";
import { FileKind as Kind, setAccessTime, setIdentity } from "./types.ts";
import type { ProcessInfoLayout, StatfsLayout, StatLayout } from "./posix_tables.ts";

const encoder = new TextEncoder();

/** UTF-8 bytes of `path` followed by a NUL, as `open(2)` and `execvp(3)` want them. */
export function encodeCString(path: string): Uint8Array {
  const bytes = encoder.encode(path);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** Maps `st_mode` to a {@linkcode FileKind}. */
function kindOfMode(mode: number): FileKind {
  const type = mode & S_IFMT;
  return type === S_IFREG
    ? Kind.FILE
    : type === S_IFDIR
    ? Kind.DIRECTORY
    : type === S_IFLNK
    ? Kind.SYMLINK
    : Kind.OTHER;
}

/** Reads dev/ino/kind/owner/mode out of a raw `struct stat` into an identity buffer. */
export function readStat(layout: StatLayout, view: DataView, out: FileIdentity): void {
  const mode = layout.modeSize === 4
    ? view.getUint32(layout.modeOffset, true)
    : view.getUint16(layout.modeOffset, true);
  setIdentity(
    out,
    view.getUint32(layout.devOffset, true),
    layout.devSize === 8 ? view.getUint32(layout.devOffset + 4, true) : 0,
    view.getUint32(layout.inoOffset, true),
    view.getUint32(layout.inoOffset + 4, true),
    kindOfMode(mode),
    view.getUint32(layout.uidOffset, true),
    mode,
  );
  setAccessTime(
    out,
    view.getUint32(layout.atimeOffset, true),
    view.getUint32(layout.atimeOffset + 8, true),
  );
}

const decoder = new TextDecoder();

/** Reads what a raw `struct statfs` says into `out`. */
export function readStatfs(layout: StatfsLayout, view: DataView, out: FilesystemInfo): void {
  out.magic = layout.typeOffset === undefined ? 0 : view.getUint32(layout.typeOffset, true);
  out.local = layout.flagsOffset === undefined
    ? undefined
    : (view.getUint32(layout.flagsOffset, true) & layout.localFlag!) !== 0;
  if (layout.nameOffset === undefined) {
    out.name = "";
  } else {
    const bytes = new Uint8Array(view.buffer, layout.nameOffset, 16);
    const end = bytes.indexOf(0);
    out.name = decoder.decode(bytes.subarray(0, end < 0 ? 16 : end));
  }
}

/** 2000-01-01: no process running now started before it. */
const EARLIEST_START_SECONDS = 946_684_800;

/**
 * The start token in a `proc_bsdinfo` that `proc_pidinfo` filled (`written`
 * bytes), or `undefined` unless the answer is self-consistent: the whole
 * struct was written, it names `pid`, and the start time is a plausible wall
 * clock time. A layout mistake so gives no token (the holder is judged by
 * signal 0 alone) rather than one that changes and makes a live holder look
 * stale.
 *
 * @example
 * ```ts
 * import { startTokenFromProcessInfo } from "./posix_structs.ts";
 * import { DARWIN_PROC_BSDINFO } from "./posix_tables.ts";
 * const view = new DataView(new ArrayBuffer(DARWIN_PROC_BSDINFO.size));
 * startTokenFromProcessInfo(DARWIN_PROC_BSDINFO, view, 0, 42, Date.now()); // undefined
 * ```
 */
export function startTokenFromProcessInfo(
  layout: ProcessInfoLayout,
  view: DataView,
  written: number,
  pid: number,
  nowMs: number,
): string | undefined {
  if (written !== layout.size || view.getUint32(layout.pidOffset, true) !== pid) return undefined;
  const seconds = Number(view.getBigUint64(layout.startSecondsOffset, true));
  const microseconds = Number(view.getBigUint64(layout.startMicrosecondsOffset, true));
  if (
    seconds < EARLIEST_START_SECONDS || seconds * 1000 > nowMs + 86_400_000 ||
    microseconds >= 1_000_000
  ) {
    return undefined;
  }
  return `mac:${seconds}.${String(microseconds).padStart(6, "0")}`;
}
