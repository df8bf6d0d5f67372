/**
 * What `-F` changes in this process before `execvp`, so that the command
 * starts as it would under flock(1), which execs it untouched: the runtime's
 * own settings are undone, the rest is left as this process inherited it.
 *
 * - Signals: a handler is reset by `exec` itself, but an ignored signal stays
 *   ignored. Each runtime ignores some for itself (SIGPIPE, and SIGXFSZ in
 *   Node and Bun, so that a write fails with an error instead of killing
 *   it); those go back to the default action, or `yes | head -1` would end
 *   with "Broken pipe" instead of dying of SIGPIPE. A signal the parent
 *   ignored (nohup's SIGHUP) stays ignored, as under flock(1), where the
 *   runtime kept it (Deno and Bun do; Node resets them at start-up). No
 *   runtime blocks a signal on its main thread, so the mask is left alone.
 * - `O_NONBLOCK` on descriptors 0 to 2: runtimes set it on the pipes they
 *   write to, and it belongs to the open file, which the command shares: a
 *   command that does not expect it loses output (EAGAIN) on a full pipe.
 * - Close-on-exec on the descriptors the command must inherit: the runtime
 *   marks some it inherited (Node: 0 to 2 and the low ones; Bun: every one
 *   above 2).
 *
 * Every change is undone when `exec` fails and `filelock` carries on.
 *
 * @module
 */

import type { Binding } from "../../ffi/types.ts";
import { runtime, type RuntimeName } from "../../ffi/runtime.ts";

/** The signals each runtime ignores for its own sake (its start-up sets them to SIG_IGN). */
const RUNTIME_IGNORES: Readonly<Record<RuntimeName, readonly ("SIGPIPE" | "SIGXFSZ")[]>> = {
  deno: ["SIGPIPE"],
  bun: ["SIGPIPE", "SIGXFSZ"],
  node: ["SIGPIPE", "SIGXFSZ"],
};

/** A binding that has the calls `-F` needs. */
export type ExecBinding =
  & Binding
  & Required<Pick<Binding, "exec" | "dup" | "fcntl" | "sigaction" | "posixConstants">>;

/** Whether `binding` can make the changes and the `exec` that `-F` needs. */
export function canExec(binding: Binding | undefined): binding is ExecBinding {
  return binding !== undefined && binding.exec !== undefined && binding.dup !== undefined &&
    binding.fcntl !== undefined && binding.sigaction !== undefined &&
    binding.posixConstants !== undefined;
}

/**
 * Prepares this process for `exec` (see the module's documentation): the
 * runtime's ignored signals back to the default, `O_NONBLOCK` off descriptors
 * 0 to 2, close-on-exec off `inherit` (and off 0 to 2). Returns the function
 * that undoes it all.
 */
export function prepareForExec(binding: ExecBinding, inherit: readonly number[]): () => void {
  const c = binding.posixConstants;
  const undo: (() => void)[] = [];
  for (const name of RUNTIME_IGNORES[runtime]) {
    const signal = c[name];
    if (binding.sigaction(signal) === c.SIG_IGN && binding.sigaction(signal, c.SIG_DFL) >= 0) {
      undo.push(() => binding.sigaction(signal, c.SIG_IGN));
    }
  }
  const clear = (fd: number, get: number, set: number, bit: number) => {
    const flags = binding.fcntl(fd, get, 0);
    if (flags >= 0 && (flags & bit) !== 0 && binding.fcntl(fd, set, flags & ~bit) >= 0) {
      undo.push(() => binding.fcntl(fd, set, flags));
    }
  };
  for (let fd = 0; fd <= 2; fd++) clear(fd, c.F_GETFL, c.F_SETFL, binding.constants.O_NONBLOCK);
  for (const fd of new Set([0, 1, 2, ...inherit])) {
    clear(fd, c.F_GETFD, c.F_SETFD, c.FD_CLOEXEC);
  }
  return () => {
    for (const step of undo.reverse()) step();
  };
}
