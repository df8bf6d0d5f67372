/**
 * The sticky-directory check of a lock file (a file another user owns in a
 * world-writable directory such as `/tmp`), made after locking, before the
 * lock is handed out (docs/architecture.md, "Invariants").
 *
 * @module
 */

import { dirname } from "node:path";
import type { FileIdentity } from "../../ffi/types.ts";
import { newIdentity, ownerOf, permissionsOf, UNKNOWN_OWNER } from "../../ffi/types.ts";
import { LockError } from "../errors.ts";
import type { KernelRequest } from "./engine.ts";

const directory = newIdentity();

const S_ISVTX = 0o1000;
const S_IWOTH = 0o002;

/**
 * The refusal of a lock file that another (non-root) user owns in a sticky,
 * world-writable directory such as `/tmp`, as the kernel's
 * `protected_regular` refuses such files to `O_CREAT`: its owner may delete
 * it, and then processes that locked the old file and processes that create a
 * new one would both hold the lock. `undefined` when the file is fine, the
 * caller allowed it, or owners cannot be told here.
 */
export function foreignOwnerError(
  request: KernelRequest,
  file: FileIdentity,
): LockError | undefined {
  const { binding } = request;
  const owner = ownerOf(file);
  const self = binding.userId;
  if (
    request.allowForeignOwner || self === undefined || owner === UNKNOWN_OWNER || owner === self ||
    owner === 0
  ) {
    return undefined;
  }
  const parent = dirname(request.path);
  if (binding.lstat(binding.encodePath(parent), directory) !== 0) return undefined;
  const permissions = permissionsOf(directory);
  if ((permissions & S_ISVTX) === 0 || (permissions & S_IWOTH) === 0) return undefined;
  // The directory's owner could remove the file anyway (and the kernel lets it: protected_regular).
  if (ownerOf(directory) === owner) return undefined;
  return new LockError({
    code: "EPERM",
    path: request.path,
    detail:
      `the lock file belongs to uid ${owner}, another user, in the sticky world-writable directory ${parent}: ` +
      "that user can delete it and split the lock; use a lock path in a directory only the lock's users can write, or pass allowForeignOwner: true",
  });
}
