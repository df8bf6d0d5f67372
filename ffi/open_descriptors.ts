/**
 * This process's open descriptors as Linux shows them in `/proc/self/fd`
 * (what each links to) and `/proc/self/fdinfo` (its flags), read through
 * `node:fs`. Only reads and decodes: which of them a command gets is decided
 * in `src/cli/descriptors.ts`.
 *
 * @module
 */

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { posixTableHere } from "./runtime.ts";

/** One open descriptor. */
export interface OpenDescriptor {
  readonly fd: number;
  /**
   * What it is open on: a path, or `pipe:[inode]`, `socket:[inode]`,
   * `anon_inode:[eventpoll]` (epoll, eventfd, inotify, ...).
   */
  readonly target: string;
  /** Whether it is close-on-exec. */
  readonly closeOnExec: boolean;
  /** Its access mode. */
  readonly access: "read" | "write" | "read-write";
}

const ACCESS = ["read", "write", "read-write", "read-write"] as const;

/**
 * The open descriptors of this process, in no particular order; `undefined`
 * where the OS has no `/proc/self/fd` (macOS, Windows) or it cannot be read
 * (Deno without `--allow-read` for it). A descriptor closed while it is read
 * is left out.
 */
export function openDescriptors(): OpenDescriptor[] | undefined {
  const table = posixTableHere();
  if (table?.os !== "linux") return undefined;
  let names: string[];
  try {
    names = readdirSync("/proc/self/fd");
  } catch {
    return undefined;
  }
  const found: OpenDescriptor[] = [];
  for (const name of names) {
    try {
      const target = readlinkSync(`/proc/self/fd/${name}`);
      const info = readFileSync(`/proc/self/fdinfo/${name}`, "utf8");
      const flags = parseInt(/^flags:\s*([0-7]+)$/m.exec(info)?.[1] ?? "", 8);
      if (Number.isNaN(flags)) continue;
      found.push({
        fd: Number(name),
        target,
        closeOnExec: (flags & table.constants.O_CLOEXEC) !== 0,
        access: ACCESS[flags & table.posixConstants.O_ACCMODE],
      });
    } catch {
      // closed meanwhile (the directory listing's own descriptor is)
    }
  }
  return found;
}
