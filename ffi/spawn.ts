/**
 * Starting a command as a child process, each runtime its own way: Deno
 * through `Deno.Command`, which passes this process's environment to the
 * child without reading it (so `--allow-run` is the only permission it needs,
 * where `node:child_process` reads `process.env` and so needs `--allow-env`);
 * Node and Bun through `node:child_process`. The child shares standard input,
 * output and error.
 *
 * @module
 */

import { spawn, type StdioOptions } from "node:child_process";
import process from "node:process";
import { runtime } from "./runtime.ts";

/** How a child ended: its exit code or the signal it died of, or why it never started. */
export type ChildExit =
  | { readonly code: number | null; readonly signal: string | null }
  | {
    /** An errno name (`ENOENT`, `EACCES`), where the runtime gives one. */
    readonly error: string | undefined;
    readonly message: string;
  };

/** A child that was started (or failed to start: see {@linkcode ChildExit}). */
export interface Child {
  /** Its pid; `undefined` when it did not start. */
  readonly pid: number | undefined;
  /** Sends it a signal; nothing once it has ended. */
  kill(signal: "SIGINT" | "SIGTERM"): void;
  /** Resolves once it has ended. */
  readonly exit: Promise<ChildExit>;
}

interface DenoChild {
  readonly pid: number;
  readonly status: Promise<{ code: number; signal: string | null }>;
  kill(signal: string): void;
}
interface DenoCommandApi {
  Command: new (
    command: string,
    options: { args: string[]; stdin: "inherit"; stdout: "inherit"; stderr: "inherit" },
  ) => { spawn(): DenoChild };
}

function failed(error: unknown): ChildExit {
  const code = (error as { code?: unknown }).code;
  return {
    error: typeof code === "string" ? code : undefined,
    message: error instanceof Error ? error.message : String(error),
  };
}

/**
 * Starts `argv` with the standard streams shared. In Node and Bun each of
 * `descriptors` (numbers above 2) is passed to the child as the same number;
 * in Deno the child inherits every descriptor that is not close-on-exec, and
 * `descriptors` must be such.
 */
export function spawnChild(argv: readonly string[], descriptors: readonly number[]): Child {
  return runtime === "deno" ? spawnDeno(argv) : spawnNode(argv, descriptors);
}

function spawnDeno(argv: readonly string[]): Child {
  const deno = (globalThis as unknown as { Deno: DenoCommandApi }).Deno;
  let child: DenoChild;
  try {
    child = new deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    return { pid: undefined, kill() {}, exit: Promise.resolve(failed(error)) };
  }
  let ended = false;
  const exit = child.status.then((status): ChildExit => {
    ended = true;
    return status.signal !== null
      ? { code: null, signal: status.signal }
      : { code: status.code, signal: null };
  });
  return {
    pid: child.pid,
    // Deno.ChildProcess.kill needs no permission beyond --allow-run=<command>.
    kill(signal) {
      if (!ended) child.kill(signal);
    },
    exit,
  };
}

function spawnNode(argv: readonly string[], descriptors: readonly number[]): Child {
  const stdio: ("inherit" | "ignore" | number)[] = ["inherit", "inherit", "inherit"];
  for (const fd of descriptors) {
    while (stdio.length < fd) stdio.push("ignore");
    stdio[fd] = fd;
  }
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(argv[0], argv.slice(1), { stdio: stdio as StdioOptions });
  } catch (error) {
    return { pid: undefined, kill() {}, exit: Promise.resolve(failed(error)) };
  }
  const exit = new Promise<ChildExit>((resolve) => {
    child.on("error", (error) => resolve(failed(error)));
    child.on("exit", (code, signal) => {
      resolve({ code, signal });
    });
  });
  return {
    pid: child.pid,
    // process.kill, not child.kill, as the signal is sent whatever the child did with it.
    kill(signal) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid, signal);
      }
    },
    exit,
  };
}
