// What filelock says on a terminal (issue 15): without -v, flock(1) is
// silent, but where stderr is a terminal filelock names the holder after a
// conflict and shows the wait as a line it redraws; main() is given an output
// whose stderr is a terminal, while another process holds the lock.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { type CliOutput, main } from "../../src/cli/main.ts";
import { cliArgv, finish, inTemp, runtimeName, signal, start, waitFor } from "../helpers.ts";

/** An output that keeps what main() writes, on a terminal or not. */
function captured(stderrIsTerminal: boolean): CliOutput & { out: string; err: string } {
  const result = {
    out: "",
    err: "",
    stderrIsTerminal,
    stdout: (text: string) => void (result.out += text),
    stderr: (text: string) => void (result.err += text),
  };
  return result;
}

/** The CLI of this runtime holding `lock` in another process, until stopped. */
async function holding(lock: string): Promise<ChildProcess> {
  const holder = start(cliArgv([lock, "sh", "-c", "echo held; exec sleep 60"]));
  await waitFor(holder, "held");
  return holder;
}

async function stop(holder: ChildProcess): Promise<void> {
  signal(holder, "SIGTERM");
  await finish(holder);
}

test(
  `${runtimeName}: cli on a terminal: a conflict names the holder on stderr, without -v`,
  inTemp(async (dir) => {
    const lock = join(dir, "t.lock");
    const holder = await holding(lock);
    try {
      const terminal = captured(true);
      assert.equal(await main(["-n", lock, "true"], terminal), 1);
      assert.equal(terminal.out, "");
      assert.match(
        terminal.err,
        new RegExp(
          `^filelock: ${lock} is locked, held by pid ${holder.pid} .*\\(flock, exclusive\\)\\n$`,
        ),
      );
      // Control: not a terminal, and no -v: as silent as flock(1).
      const pipe = captured(false);
      assert.equal(await main(["-n", lock, "true"], pipe), 1);
      assert.equal(pipe.err + pipe.out, "");
    } finally {
      await stop(holder);
    }
  }),
);

test(
  `${runtimeName}: cli on a terminal: the wait is one line, redrawn with the time and the holder, then cleared`,
  inTemp(async (dir) => {
    const lock = join(dir, "w.lock");
    const holder = await holding(lock);
    try {
      const terminal = captured(true);
      assert.equal(await main(["-w", "0.8", lock, "true"], terminal), 1);
      assert.equal(terminal.out, "");
      const redraws = terminal.err.split("\r\x1b[K").filter((part) => part !== "");
      const waiting = new RegExp(
        `^filelock: waiting \\d+\\.\\d s for ${lock}, held by pid ${holder.pid} .*\\(flock, exclusive\\)$`,
      );
      const lines = redraws.slice(0, -1);
      assert.ok(lines.length >= 2, `redrawn while it waits: ${JSON.stringify(terminal.err)}`);
      for (const line of lines) assert.match(line, waiting);
      assert.match(lines[0], /waiting 0\.0 s/);
      assert.ok(!lines.some((line) => line.includes("\n")), "one line, never scrolled");
      // The line is cleared, then the timeout is said on a line of its own.
      assert.match(
        redraws.at(-1)!,
        new RegExp(
          `^filelock: timed out after 0.8 s waiting for ${lock}, held by pid ${holder.pid} .*\\n$`,
        ),
      );
      // Control: not a terminal, and no -v: nothing at all.
      const pipe = captured(false);
      assert.equal(await main(["-w", "0.3", lock, "true"], pipe), 1);
      assert.equal(pipe.err + pipe.out, "");
    } finally {
      await stop(holder);
    }
  }),
);
