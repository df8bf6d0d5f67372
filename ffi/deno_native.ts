/**
 * The `deno-native` binding: Deno's own `FsFile.tryLockSync` (a kernel `flock`
 * on Linux and macOS), for Deno processes that have no FFI permission. Needs
 * `--allow-read` and `--allow-write` for the lock file.
 *
 * Deno's `open` has neither `O_NOFOLLOW` nor `O_NONBLOCK` (it ignores
 * `customFlags` for them), so `open` looks with `lstat` first: it refuses a
 * symlink (`ELOOP`) and, since it cannot open one without waiting, a fifo,
 * socket or device (`EINVAL`). A symlink planted between that look and the
 * open is opened through (briefly) and then caught by the state machine's
 * identity check. Use the FFI backend (`--allow-ffi`) to avoid even that.
 *
 * @module
 */

import type { Binding, EncodedPath, ErrnoLookup, FileIdentity, OpenConstants } from "./types.ts";
import { FileKind, setIdentity, UNKNOWN_OWNER } from "./types.ts";
import { thrownErrnoName } from "./thrown.ts";

const TWO_32 = 2 ** 32;

function kindOfInfo(info: Deno.FileInfo): FileKind {
  return info.isFile
    ? FileKind.FILE
    : info.isDirectory
    ? FileKind.DIRECTORY
    : info.isSymlink
    ? FileKind.SYMLINK
    : FileKind.OTHER;
}

function writeIdentity(info: Deno.FileInfo, out: FileIdentity): void {
  const dev = info.dev ?? 0;
  const ino = info.ino ?? 0;
  setIdentity(
    out,
    dev % TWO_32,
    Math.floor(dev / TWO_32),
    ino % TWO_32,
    Math.floor(ino / TWO_32),
    kindOfInfo(info),
    info.uid ?? UNKNOWN_OWNER,
    info.mode ?? 0,
  );
}

/** This process's uid where Deno lets us read it without prompting (`--allow-sys=uid`). */
function effectiveUserId(): number | undefined {
  if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") {
    return undefined;
  }
  return Deno.uid() ?? undefined;
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
 * import { errnoLookup } from "./posix.ts";
 * import { LINUX_X86_64 } from "./posix_tables.ts";
 * const binding = createDenoNativeBinding(errnoLookup(LINUX_X86_64), LINUX_X86_64.constants);
 * ```
 */
export function createDenoNativeBinding(lookup: ErrnoLookup, c: OpenConstants): Binding {
  const { errnoName, errnoNumber } = lookup;
  const files = new Map<number, Deno.FsFile>();
  let nextHandle = 1;

  const failure = (error: unknown): number => {
    const number = errnoNumber(thrownErrnoName(error, errnoName));
    return number > 0 ? -number : -errnoNumber("EIO");
  };

  return {
    backend: "deno-native",
    constants: c,
    userId: effectiveUserId(),
    osDescriptors: false,
    errnoName,
    errnoNumber,
    encodePath: (path: string): EncodedPath => path,
    open(path: EncodedPath, flags: number, mode: number): number {
      const name = path as string;
      try {
        if ((flags & (c.O_NOFOLLOW | c.O_NONBLOCK)) !== 0) {
          let kind: FileKind | undefined;
          try {
            kind = kindOfInfo(Deno.lstatSync(name));
          } catch (error) {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          }
          if (kind === FileKind.SYMLINK && (flags & c.O_NOFOLLOW) !== 0) {
            return -errnoNumber("ELOOP");
          }
          if (kind === FileKind.OTHER && (flags & c.O_NONBLOCK) !== 0) {
            return -errnoNumber("EINVAL");
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
