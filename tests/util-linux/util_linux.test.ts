// util-linux's own flock(1) tests (tests/util-linux/run.sh, a port of
// tests/ts/misc/flock of 2.38 and tests/ts/flock/* of master), run against
// /usr/bin/flock, the control, and against `filelock` in this test's runtime:
// every subtest that flock(1) passes must pass for filelock too, but for the
// known gaps below, which must fail (so that a closed gap is noticed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { cliArgv, finish, repoRoot, runtimeName, start } from "../helpers.ts";

const FLOCK = "/usr/bin/flock";
const HARNESS = join(repoRoot, "tests", "util-linux", "run.sh");

/**
 * Subtests filelock may fail although flock(1) passes them, and why: none.
 * An entry must fail (so that a closed gap is noticed and removed).
 */
const KNOWN_GAPS: Record<string, string> = {};

/**
 * Subtests whose result would depend on how long one start of the CLI takes
 * in a runtime where that is long, by runtime: none. Upstream's holder keeps
 * its lock for 3 s after its own start: the four flock runs after it must all
 * start within those 3 s, and the six runs must end within 5 whole seconds.
 * Node runs the built CLI (tens of milliseconds a start), so no entry is
 * needed; one here accepts either result, and prints it.
 */
const TIMING_GAPS: Record<string, Record<string, string>> = {};

const skip = existsSync(FLOCK) ? undefined : `${FLOCK} is missing: no control to compare with`;
if (skip) console.log(`SKIP util-linux flock(1) tests: ${skip}`);

/** The CLI in this test's own runtime. */
const filelock = (): string[] => cliArgv();

/** The harness's arguments for a run against filelock. */
const filelockArgs = (): string[] => ["--name", "filelock", "--", ...filelock()];

interface Result {
  status: "ok" | "not ok" | "skip";
  /** The harness's line for the subtest, and its `#   ` lines (the diffs). */
  text: string;
}

/** The harness's output: results by subtest name. */
function parse(stdout: string, code: number | string | null, stderr: string): Map<string, Result> {
  assert.match(
    stdout,
    /^# util-linux: \d+ passed, \d+ failed, \d+ skipped$/m,
    `the harness did not finish (exit ${code}):\n${stdout}${stderr}`,
  );
  const results = new Map<string, Result>();
  let last: Result | undefined;
  for (const line of stdout.split("\n")) {
    const m = /^(ok|not ok|skip) - (\S+?)(?::| #|$)/.exec(line);
    if (m) {
      last = { status: m[1] as Result["status"], text: line };
      results.set(m[2], last);
    } else if (line.startsWith("#   ") && last) {
      last.text += `\n${line}`;
    }
  }
  return results;
}

/** The subtest names, from the harness (it runs nothing for that). */
function subtests(): string[] {
  const listed = spawnSync("bash", [HARNESS, "--list"], { encoding: "utf8" });
  if (listed.status !== 0) throw new Error(`${HARNESS} --list failed: ${listed.stderr}`);
  return listed.stdout.split("\n").filter((name) => name !== "");
}

/**
 * The harness's tests run all at once (its default is 2): each waits most of
 * its time (a holder sleeping 3 s), and subtests of one test still run in
 * order, as upstream runs them.
 */
const JOBS = ["--jobs", "6"];

/** One run of the harness with `args` (the command under test, after its options). */
async function harness(args: string[]): Promise<Map<string, Result>> {
  const done = await finish(start(["bash", HARNESS, ...JOBS, ...args]));
  return parse(done.stdout, done.code ?? done.signal, done.stderr);
}

/**
 * Runs of the harness, per command. Its time checks and its holder's 3 s
 * window time the command on a machine that others may load: a run with an
 * unexpected result is made again, up to this many runs in all, and the last
 * run counts. A real regression fails every run.
 */
const RUNS = 3;

/**
 * The control, run when the tests are defined (what flock(1) does not pass
 * here is skipped), beside filelock's first run.
 */
async function controlRun(): Promise<Map<string, Result>> {
  let results = new Map<string, Result>();
  for (let run = 1; run <= RUNS; run++) {
    results = await harness(["--flock", FLOCK]);
    const failed = [...results.values()].filter((r) => r.status === "not ok");
    if (failed.length === 0) break;
    console.log(
      `util-linux: control run ${run} of ${RUNS}: ${failed.map((r) => r.text).join("\n")}`,
    );
  }
  return results;
}

const names = subtests();
/** filelock's first run: started now, beside the control (both mostly wait). */
const firstRun = skip === undefined ? harness(filelockArgs()) : undefined;
// Not left unhandled if the control fails first; the tests await it again.
firstRun?.catch(() => {});
const control = skip === undefined ? await controlRun() : new Map<string, Result>();

/** The subtests whose result for filelock is not what this file expects. */
function surprises(results: Map<string, Result>): string[] {
  return names.filter((name) => {
    if (control.get(name)?.status !== "ok") return false;
    if (TIMING_GAPS[runtimeName]?.[name] !== undefined) return false;
    const status = results.get(name)?.status;
    return KNOWN_GAPS[name] !== undefined ? status === "ok" : status !== "ok";
  });
}

let ours: Promise<Map<string, Result>> | undefined;
/** filelock's run, once for all tests (made again while it surprises). */
function filelockRun(): Promise<Map<string, Result>> {
  ours ??= (async () => {
    let results = new Map<string, Result>();
    for (let run = 1; run <= RUNS; run++) {
      results = run === 1 && firstRun !== undefined
        ? await firstRun
        : await harness(filelockArgs());
      const unexpected = surprises(results);
      if (unexpected.length === 0) break;
      console.log(
        `util-linux: filelock run ${run} of ${RUNS}: unexpected ${unexpected.join(", ")}`,
      );
    }
    return results;
  })();
  return ours;
}

test(
  `${runtimeName}: util-linux: ${FLOCK} passes every subtest it supports (the control)`,
  { skip },
  () => {
    const failed = [...control.values()].filter((r) => r.status === "not ok");
    assert.deepEqual(failed.map((r) => r.text), [], "the control failed");
    assert.deepEqual([...control.keys()], names, "the control did not report every subtest");
    assert.ok(
      names.some((name) => control.get(name)?.status === "ok"),
      "the control passed nothing",
    );
  },
);

test(`${runtimeName}: util-linux: KNOWN_GAPS lists only subtests ${FLOCK} passes`, { skip }, () => {
  const unknown = Object.keys(KNOWN_GAPS).filter((name) => control.get(name)?.status !== "ok");
  assert.deepEqual(unknown, [], "KNOWN_GAPS entries that flock(1) does not pass here");
});

const unsupported = names.filter((name) => {
  const status = control.get(name)?.status;
  return status === "skip" || status === "not ok";
});
if (unsupported.length > 0 && !skip) {
  // One line for them all: they are the same reason, util-linux newer than this machine's.
  console.log(
    `SKIP util-linux: ${unsupported.length} subtests that ${FLOCK} does not pass here either (options newer than its version): ${
      unsupported.join(", ")
    }`,
  );
}

for (const name of names) {
  const flock = control.get(name);
  const notRequired = flock?.status === "skip" || flock?.status === "not ok"
    ? `${FLOCK} does not pass it here: ${flock.text.split("\n")[0]}`
    : undefined;
  test(`${runtimeName}: util-linux: ${name}`, { skip: skip ?? notRequired }, async () => {
    const result = (await filelockRun()).get(name);
    assert.ok(result, `no filelock result for ${name}`);
    const timing = TIMING_GAPS[runtimeName]?.[name];
    if (timing !== undefined) {
      console.log(`TIMING GAP ${runtimeName} ${name}: ${timing}; this time: ${result.text}`);
      return;
    }
    const gap = KNOWN_GAPS[name];
    if (gap !== undefined) {
      console.log(`KNOWN GAP ${name}: ${gap}`);
      assert.notEqual(
        result.status,
        "ok",
        `${name} passes now: remove it from KNOWN_GAPS (issue 15)`,
      );
      return;
    }
    assert.equal(result.status, "ok", result.text);
  });
}
