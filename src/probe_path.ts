/**
 * What `probe(path)` says: the backend a lock on that path uses in this
 * process, and the filesystem it lives on, with what that filesystem means
 * for the lock (docs/architecture.md, "Filesystems").
 *
 * @module
 */

import { lockKindFor } from "./acquisition.ts";
import { filesystemOf } from "./filesystems.ts";
import { backendRequest, lockPath } from "./options.ts";
import { resolveBackend } from "./probe.ts";
import type { ProbeResult } from "./types.ts";

const PIDFILE_SEEN_BY =
  "which flock(1) and other kernel lock users do not see; choose a filesystem with flock(2) to lock with them";

/** `probe(path, options)`: the backend for that path, and its filesystem. */
export function probePath(
  path: unknown,
  options: { backend?: unknown } | undefined,
): ProbeResult {
  const absolute = lockPath(path);
  const backend = resolveBackend(backendRequest(options?.backend, "options.backend"));
  const { fsType, network, mayHang } = filesystemOf(absolute, backend.binding);
  const base = backend.result;
  const where = { path: absolute, fsType, network };
  if (backend.binding !== undefined && lockKindFor(absolute, backend) === "pidfile") {
    return {
      ...base,
      ...where,
      backend: "pidfile",
      degraded: true,
      reason:
        `The ${fsType} filesystem of this path refused flock(2) in this process, so it is locked with the pidfile backend, ${PIDFILE_SEEN_BY}.`,
    };
  }
  let reason = base.reason;
  if (network) {
    reason +=
      ` The lock file is on ${fsType}, a network filesystem: a kernel lock there is as good as the server's lock manager (Linux emulates flock with fcntl locks on NFS), removeOnRelease is refused, and a lock shared between hosts belongs in PostgreSQL (@lockkit/filelock/postgres).`;
  } else if (mayHang) {
    reason +=
      ` The lock file is on ${fsType}, whose daemon may leave flock(2) unanswered: the first lock there is taken on a thread of its own, within the caller's timeout.`;
  } else if (fsType === "unknown" && base.runtime === "deno") {
    reason +=
      " Its filesystem cannot be told without --allow-ffi or --allow-sys=statfs, so a network or FUSE filesystem that hangs flock(2) cannot be guarded against.";
  }
  return { ...base, ...where, reason };
}
