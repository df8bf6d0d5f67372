/**
 * What filesystem a lock file is on, and what that means for locking it: a
 * network filesystem (NFS, SMB, ...) cannot check a replacement by another
 * client, and a network or FUSE filesystem can leave a `flock` unanswered
 * (docs/architecture.md, "Filesystems"). Asked of the FFI binding's
 * `statfs`, else of `node:fs`, once per directory.
 *
 * @module
 */

import { dirname } from "node:path";
import { statfsOf } from "../ffi/node_fs.ts";
import { os } from "../ffi/runtime.ts";
import type { Binding, FilesystemInfo } from "../ffi/types.ts";

/** What is known of the filesystem a lock file is on. */
export interface Filesystem {
  /** `"ext4"`, `"tmpfs"`, `"nfs"`, `"fuse"`, `"smb"`, ...; `"unknown"` where it cannot be told. */
  readonly fsType: string;
  /** A filesystem shared over a network: other hosts may lock the same file. */
  readonly network: boolean;
  /**
   * A filesystem whose `flock` may never answer (network, FUSE): its first
   * lock is taken off the main thread, within the caller's time.
   */
  readonly mayHang: boolean;
}

/** Linux `statfs` magic numbers: the name, and whether it is a network filesystem. */
const LINUX: ReadonlyMap<number, readonly [string, boolean]> = new Map([
  [0xef53, ["ext4", false]],
  [0x01021994, ["tmpfs", false]],
  [0x58465342, ["xfs", false]],
  [0x9123683e, ["btrfs", false]],
  [0x794c7630, ["overlay", false]],
  [0x2fc12fc1, ["zfs", false]],
  [0xf2f52010, ["f2fs", false]],
  [0x4d44, ["vfat", false]],
  [0x2011bab0, ["exfat", false]],
  [0x5346544e, ["ntfs", false]],
  [0x7366746e, ["ntfs3", false]],
  [0x73717368, ["squashfs", false]],
  [0x858458f6, ["ramfs", false]],
  [0x9fa0, ["proc", false]],
  [0x65735546, ["fuse", false]],
  [0x6969, ["nfs", true]],
  [0x517b, ["smb", true]],
  [0xff534d42, ["cifs", true]],
  [0xfe534d42, ["smb2", true]],
  [0x01021997, ["9p", true]],
  [0x00c36400, ["ceph", true]],
  [0x0bd00bd0, ["lustre", true]],
  [0x47504653, ["gpfs", true]],
  [0x5346414f, ["afs", true]],
  [0x6b414653, ["afs", true]],
  [0x19830326, ["beegfs", true]],
]);

/** macOS type names of network filesystems (the volume's `MNT_LOCAL` flag says it too). */
const NETWORK_NAMES: ReadonlySet<string> = new Set([
  "nfs",
  "smbfs",
  "afpfs",
  "webdav",
  "cifs",
  "ftp",
]);

const UNKNOWN: Filesystem = Object.freeze({ fsType: "unknown", network: false, mayHang: false });

/** What `statfs` said, in words (the decision this module exists for). */
export function describeFilesystem(info: FilesystemInfo): Filesystem {
  if (info.magic !== 0) {
    const known = LINUX.get(info.magic);
    const fsType = known?.[0] ?? `0x${info.magic.toString(16)}`;
    const network = known?.[1] ?? false;
    return { fsType, network, mayHang: network || fsType === "fuse" };
  }
  if (info.name === "" && info.local === undefined) return UNKNOWN;
  const fsType = info.name === "" ? "unknown" : info.name.toLowerCase();
  const fuse = fsType.startsWith("fuse") || fsType.startsWith("osxfuse") ||
    fsType.startsWith("macfuse");
  const network = info.local === false || NETWORK_NAMES.has(fsType);
  return { fsType, network, mayHang: network || fuse };
}

const byDirectory = new Map<string, Filesystem>();
/** Directories remembered at most: a process that locks in ever new directories stays bounded. */
const REMEMBERED_DIRECTORIES = 1024;

/**
 * The filesystem of the lock file at `path` (absolute), from its directory's
 * `statfs`: through `binding` where it can ask (no Deno permission needed
 * beyond FFI), else `node:fs`. Cached per directory; `"unknown"` where
 * nothing can tell.
 */
export function filesystemOf(path: string, binding: Binding | undefined): Filesystem {
  const directory = dirname(path);
  const cached = byDirectory.get(directory);
  if (cached !== undefined) return cached;
  const info: FilesystemInfo = { magic: 0, name: "", local: undefined };
  let asked = false;
  if (binding?.statfs !== undefined) {
    asked = binding.statfs(binding.encodePath(directory), info) === 0;
  }
  if (!asked && os === "linux") {
    const magic = statfsOf(directory);
    if (magic !== undefined) {
      info.magic = magic;
      asked = true;
    }
  }
  const filesystem = asked ? describeFilesystem(info) : UNKNOWN;
  // An answer that says nothing is not cached: the directory may appear later.
  if (asked) {
    if (byDirectory.size >= REMEMBERED_DIRECTORIES) {
      byDirectory.delete(byDirectory.keys().next().value!);
    }
    byDirectory.set(directory, filesystem);
  }
  return filesystem;
}
