/**
 * What `filelock` writes and when: its streams (written at once, nothing
 * left in a buffer), and flock(1)'s lines after a conflict, a timeout or a
 * lock taken, with ours naming the holder where flock(1) would be silent
 * unless asked.
 *
 * @module
 */

import { writeSync } from "node:fs";
import { isatty } from "node:tty";
import type { Options } from "./args.ts";
import type { CliOutput } from "./report.ts";

const encoder = new TextEncoder();

/** Writes all of `text` to descriptor `fd` now: nothing is left in a buffer when the process is replaced (-F) or ends. */
function writeNow(fd: number, text: string): void {
  const bytes = encoder.encode(text);
  for (let written = 0; written < bytes.length;) {
    try {
      written += writeSync(fd, bytes, written);
    } catch (error) {
      // A non-blocking pipe that is full for a moment: try again.
      if ((error as { code?: string }).code !== "EAGAIN") throw error;
    }
  }
}

/** The process's own stdout and stderr. */
export const processOutput: CliOutput = {
  stdout: (text) => writeNow(1, text),
  stderr: (text) => writeNow(2, text),
  // isatty, not process.stderr: Bun's stream keeps a copy of descriptor 2 open (which a
  // command would inherit), and Node's makes a pipe non-blocking.
  stderrIsTerminal: isatty(2),
};

/** Whether to say more than flock(1) does: on a terminal, or with -v. */
export function talkative(options: Options, out: CliOutput): boolean {
  return out.stderrIsTerminal || options.verbose;
}

/** flock(1)'s verbose line once the lock is held, on stdout. */
export function tookLine(options: Options, out: CliOutput, started: number): void {
  if (!options.verbose) return;
  const micros = Math.round((performance.now() - started) * 1000);
  const seconds = Math.floor(micros / 1e6);
  out.stdout(
    `filelock: getting lock took ${seconds}.${String(micros % 1e6).padStart(6, "0")} seconds\n`,
  );
}

/** The lock is held (-n): flock(1)'s verbose line, and ours naming the holder. */
export function conflict(options: Options, out: CliOutput, what: string, holder: string): number {
  if (options.verbose) out.stderr("filelock: failed to get lock\n");
  if (talkative(options, out)) {
    out.stderr(`filelock: ${what} is locked${holder ? `, ${holder}` : ""}\n`);
  }
  return options.conflictExitCode;
}

/** The wait timed out (-w): flock(1)'s verbose line, and ours naming the holder. */
export function timedOut(options: Options, out: CliOutput, what: string, holder: string): number {
  if (options.verbose) out.stderr("filelock: timeout while waiting to get lock\n");
  if (talkative(options, out)) {
    out.stderr(
      `filelock: timed out after ${options.timeoutSeconds} s waiting for ${what}${
        holder ? `, ${holder}` : ""
      }\n`,
    );
  }
  return options.conflictExitCode;
}

/** The wait that -n and -w ask for, in milliseconds. */
export function timeoutMs(options: Options): number {
  if (options.nonblock) return 0;
  return options.timeoutSeconds === undefined ? Infinity : options.timeoutSeconds * 1000;
}
