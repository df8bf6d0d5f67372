/**
 * The `deno-native` binding: Deno's own `FsFile.tryLockSync` (a kernel `flock`
 * on Linux and macOS), for Deno processes that have no FFI permission. Needs
 * `--allow-read` and `--allow-write` for the lock file.
 *
 * Deno's `open` has no `O_NOFOLLOW`, so `open` refuses a symlink it sees with
 * `lstat` first; the state machine's identity check catches one that appears
 * after that look.
 *
 * @module
 */

import type { Binding, EncodedPath, FileIdentity, OpenConstants } from "./types.ts";
import { KIND_DIRECTORY, KIND_FILE, KIND_OTHER, KIND_SYMLINK } from "./types.ts";
import type { ErrnoLookup } from "./posix_common.ts";

const TWO_32 = 2 ** 32;

function writeIdentity(info: Deno.FileInfo, out: FileIdentity): void {
  const dev = info.dev ?? 0;
  const ino = info.ino ?? 0;
  out[0] = dev % TWO_32;
  out[1] = Math.floor(dev / TWO_32);
  out[2] = ino % TWO_32;
  out[3] = Math.floor(ino / TWO_32);
  out[4] = info.isFile
    ? KIND_FILE
    : info.isDirectory
    ? KIND_DIRECTORY
    : info.isSymlink
    ? KIND_SYMLINK
    : KIND_OTHER;
}

/**
 * Creates the `deno-native` binding with the OS's error names and the flags
 * the state machine passes. Descriptors it returns are its own small integers
 * naming open `Deno.FsFile`s. On Windows `tryLockSync` is `LockFileEx` over
 * the whole file, which overlaps (and so excludes) the FFI backends' byte.
 *
 * @example
 * ```ts ignore
 * import { createDenoNativeBinding } from "./deno_native.ts";
 * import { errnoLookup } from "./posix_common.ts";
 * import { LINUX_X86_64 } from "./tables.ts";
 * const binding = createDenoNativeBinding(errnoLookup(LINUX_X86_64), LINUX_X86_64.constants);
 * ```
 */
export function createDenoNativeBinding(lookup: ErrnoLookup, c: OpenConstants): Binding {
  const { errnoName, errnoNumber } = lookup;
  const files = new Map<number, Deno.FsFile>();
  let nextHandle = 1;

  const failure = (error: unknown): number => {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") {
      const number = errnoNumber(code === "EAGAIN" ? "EWOULDBLOCK" : code);
      if (number > 0) return -number;
    }
    if (error instanceof Deno.errors.NotFound) return -errnoNumber("ENOENT");
    if (error instanceof Deno.errors.PermissionDenied) return -errnoNumber("EACCES");
    if (error instanceof Deno.errors.NotCapable) return -errnoNumber("EACCES");
    if (error instanceof Deno.errors.IsADirectory) return -errnoNumber("EISDIR");
    return -errnoNumber("EIO");
  };

  return {
    backend: "deno-native",
    constants: c,
    errnoName,
    errnoNumber,
    encodePath: (path: string): EncodedPath => path,
    open(path: EncodedPath, flags: number, mode: number): number {
      const name = path as string;
      try {
        if ((flags & c.O_NOFOLLOW) !== 0) {
          try {
            if (Deno.lstatSync(name).isSymlink) return -errnoNumber("ELOOP");
          } catch (error) {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          }
        }
        const file = Deno.openSync(name, {
          read: true,
          write: (flags & c.O_RDWR) !== 0,
          create: (flags & c.O_CREAT) !== 0,
          createNew: (flags & c.O_CREAT) !== 0 && (flags & c.O_EXCL) !== 0,
          mode,
        });
        const handle = nextHandle++;
        files.set(handle, file);
        return handle;
      } catch (error) {
        return failure(error);
      }
    },
    flock(fd: number, operation: number): number {
      const file = files.get(fd);
      if (file === undefined) return -errnoNumber("EBADF");
      try {
        if ((operation & c.LOCK_UN) !== 0) {
          file.unlockSync();
          return 0;
        }
        const exclusive = (operation & c.LOCK_EX) !== 0;
        if ((operation & c.LOCK_NB) === 0) {
          file.lockSync(exclusive);
          return 0;
        }
        return file.tryLockSync(exclusive) ? 0 : -errnoNumber("EWOULDBLOCK");
      } catch (error) {
        return failure(error);
      }
    },
    fstat(fd: number, out: FileIdentity): number {
      const file = files.get(fd);
      if (file === undefined) return -errnoNumber("EBADF");
      try {
        writeIdentity(file.statSync(), out);
        return 0;
      } catch (error) {
        return failure(error);
      }
    },
    lstat(path: EncodedPath, out: FileIdentity): number {
      try {
        writeIdentity(Deno.lstatSync(path as string), out);
        return 0;
      } catch (error) {
        return failure(error);
      }
    },
    unlink(path: EncodedPath): number {
      try {
        Deno.removeSync(path as string);
        return 0;
      } catch (error) {
        return failure(error);
      }
    },
    close(fd: number): number {
      const file = files.get(fd);
      if (file === undefined) return -errnoNumber("EBADF");
      files.delete(fd);
      try {
        file.close();
        return 0;
      } catch (error) {
        return failure(error);
      }
    },
  };
}
