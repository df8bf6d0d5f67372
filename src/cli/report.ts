/**
 * What `filelock` prints about a lock: the holder, the waiting line on
 * stderr, and `--status`.
 *
 * @module
 */

import { inspect, LockError, type LockStatus, tryAcquire } from "../../mod.ts";
import { describeHolders } from "../holder_text.ts";
import type { BackendRequest } from "../types.ts";
import type { Options } from "./args.ts";
import { errorExitCode } from "./exit_codes.ts";

/** Where the CLI writes; tests may replace it. */
export interface CliOutput {
  /** Standard output. */
  stdout(text: string): void;
  /** Standard error. */
  stderr(text: string): void;
  /** Whether standard error is a terminal. */
  stderrIsTerminal: boolean;
}

/** The holders of `status` in words ("held by pid 1 (...)"), or "" when none is known. */
export function holderText(status: Pick<LockStatus, "holders"> | undefined): string {
  if (status === undefined) return "";
  return describeHolders(status.holders, "");
}

/** The C library's text of an errno, as flock(1) prints it (`warn`), for the errnos that come up. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  EINTR: "Interrupted system call",
  EIO: "Input/output error",
  EBADF: "Bad file descriptor",
  ENOMEM: "Cannot allocate memory",
  EACCES: "Permission denied",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EINVAL: "Invalid argument",
  ENOEXEC: "Exec format error",
  ENOLCK: "No locks available",
  ENOSYS: "Function not implemented",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long",
  EOPNOTSUPP: "Operation not supported",
  ENOTSUP: "Operation not supported",
  E2BIG: "Argument list too long",
};

/** `strerror` of an errno name; the name itself where it has no text here. */
export function strerror(code: string): string {
  return STRERROR[code] ?? code;
}

/** `inspect`, or `undefined` where it fails: the holder is a courtesy, never a reason to fail. */
export function safeInspect(
  path: string,
  backend: BackendRequest | undefined,
): LockStatus | undefined {
  try {
    return inspect(path, { backend });
  } catch {
    return undefined;
  }
}

/**
 * Shows the wait on stderr: an updating line on a terminal, one line with -v
 * otherwise. Returns the function that ends it.
 */
export function startWaitingLine(
  options: Options,
  out: CliOutput,
  seconds: () => string,
  first: LockStatus | undefined,
): (() => void) | undefined {
  if (!out.stderrIsTerminal) {
    if (options.verbose) {
      const holder = holderText(first);
      out.stderr(`filelock: waiting for ${options.lockfile}${holder ? `, ${holder}` : ""}\n`);
    }
    return undefined;
  }
  let status = first;
  const draw = () => {
    const holder = holderText(status);
    out.stderr(
      `\r\x1b[Kfilelock: waiting ${seconds()} s for ${options.lockfile}${
        holder ? `, ${holder}` : ""
      }`,
    );
  };
  draw();
  let ticks = 0;
  const timer = setInterval(() => {
    // The holder may change while we wait; look again now and then.
    if (++ticks % 4 === 0) status = safeInspect(options.lockfile, options.backend) ?? status;
    draw();
  }, 250);
  return () => {
    clearInterval(timer);
    out.stderr("\r\x1b[K");
  };
}

/**
 * `--status`: prints whether the lock is held and by whom, then the lock
 * file's filesystem; exit 0 free, 1 held.
 */
export function status(options: Options, out: CliOutput): number {
  let result: LockStatus;
  try {
    result = inspect(options.lockfile, { backend: options.backend });
  } catch (error) {
    if (error instanceof LockError) {
      out.stderr(`filelock: cannot inspect ${options.lockfile}: ${error.message}\n`);
      return errorExitCode(error);
    }
    throw error;
  }
  const code = printHolding(result, options, out);
  out.stdout(`filesystem: ${result.fsType}${result.network ? " (network)" : ""}\n`);
  return code;
}

function printHolding(result: LockStatus, options: Options, out: CliOutput): number {
  if (result.state === "unknown") {
    // No way to see a kernel lock here without trying it: try, and let go at once.
    const lock = tryAcquire(options.lockfile, { backend: options.backend });
    if (lock === null) {
      out.stdout(`held: ${result.path} (holder unknown: ${result.detail})\n`);
      return 1;
    }
    lock.releaseSync();
    out.stdout(`free: ${result.path}\n`);
    return 0;
  }
  if (result.state === "held") {
    out.stdout(
      `held: ${result.path}, ${describeHolders(result.holders, "by an unknown holder")}\n`,
    );
    return 1;
  }
  out.stdout(`${result.state === "stale" ? "free (stale)" : "free"}: ${result.path}`);
  out.stdout(result.state === "stale" ? `: ${result.detail}\n` : "\n");
  return 0;
}
