// The wait loop (src/wait.ts) against scripted attempters: when it retries at
// once, when it polls, when it blocks in the kernel, and how it ends.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Attempt, BUSY, held, REPLACED } from "../src/attempt.ts";
import { Backoff, BACKOFF_MAX_MS, BACKOFF_START_MS } from "../src/pace.ts";
import { type Attempter, settle, wait, waitSync } from "../src/wait.ts";
import { runtimeName } from "./helpers.ts";

/** An attempter that answers from `script` (the last answer repeats) and records its calls. */
function scripted(
  script: Attempt<string>[],
  canBlock = false,
): Attempter<string> & { calls: boolean[] } {
  const calls: boolean[] = [];
  return {
    calls,
    canBlock,
    attempt(blocking: boolean): Attempt<string> {
      calls.push(blocking);
      return script[Math.min(calls.length - 1, script.length - 1)];
    },
    timedOut: () => new Error("timed out"),
  };
}

test(`${runtimeName}: wait: the backoff doubles from its start to its cap, with jitter below each step`, () => {
  const backoff = new Backoff();
  let step = BACKOFF_START_MS;
  for (let i = 0; i < 12; i++) {
    const delay = backoff.next();
    assert.ok(delay >= step / 2 && delay <= step, `${delay} within [${step / 2}, ${step}]`);
    step = Math.min(step * 2, BACKOFF_MAX_MS);
  }
  assert.equal(step, BACKOFF_MAX_MS, "reached the cap");
});

test(`${runtimeName}: wait: settle retries a replaced file at once and stops at held or busy`, () => {
  const holds = scripted([REPLACED, REPLACED, held("fd")]);
  assert.equal(settle(holds, undefined), "fd");
  assert.equal(holds.calls.length, 3);
  const busy = scripted([REPLACED, BUSY]);
  assert.equal(settle(busy, undefined), undefined);
  assert.equal(busy.calls.length, 2);
  assert.ok(busy.calls.every((blocking) => !blocking), "settle never blocks");
});

test(`${runtimeName}: wait: settle gives up on a file replaced forever (a zero timeout still answers)`, () => {
  const forever = scripted([REPLACED]);
  assert.equal(settle(forever, undefined), undefined);
  assert.ok(forever.calls.length > 1, "retried before giving up");
});

test(`${runtimeName}: wait: waitSync without timeout or signal waits in the kernel`, () => {
  const blocking = scripted([REPLACED, held("fd")], true);
  assert.equal(waitSync(blocking, Infinity), "fd");
  assert.deepEqual(blocking.calls, [true, true]);
  // With a timeout it polls instead: every attempt is non-blocking.
  const polling = scripted([BUSY, BUSY, held("fd")], true);
  assert.equal(waitSync(polling, 10_000), "fd");
  assert.deepEqual(polling.calls, [false, false, false]);
});

test(`${runtimeName}: wait: waitSync polls once the acquisition can no longer block`, () => {
  let canBlock = true;
  const calls: boolean[] = [];
  const switching: Attempter<string> = {
    get canBlock() {
      return canBlock;
    },
    attempt(blocking) {
      calls.push(blocking);
      if (calls.length === 1) {
        canBlock = false; // e.g. the filesystem has no flock: pidfile from now on
        return REPLACED;
      }
      return calls.length < 3 ? BUSY : held("file");
    },
    timedOut: () => new Error("timed out"),
  };
  assert.equal(waitSync(switching, Infinity), "file");
  assert.deepEqual(calls, [true, false, false]);
});

test(`${runtimeName}: wait: the deadline ends a wait with the attempter's timeout error`, async () => {
  assert.throws(() => waitSync(scripted([BUSY]), 5), /timed out/);
  await assert.rejects(wait(scripted([BUSY]), 5, undefined), /timed out/);
  const once = scripted([BUSY]);
  await assert.rejects(wait(once, 0, undefined), /timed out/);
  assert.equal(once.calls.length, 1, "a zero timeout makes one attempt");
});

test(`${runtimeName}: wait: an abort ends the wait with the signal's reason, before or during it`, async () => {
  const reason = new Error("stop");
  const never = scripted([BUSY]);
  await assert.rejects(wait(never, Infinity, AbortSignal.abort(reason)), (e) => e === reason);
  assert.equal(never.calls.length, 0, "an aborted signal wins before any attempt");
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), 20);
  await assert.rejects(wait(scripted([BUSY]), Infinity, controller.signal), (e) => e === reason);
});
