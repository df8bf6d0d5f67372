// The `filelock` command, run as a real process of the runtime under test,
// side by side with util-linux flock(1) on the same files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inspect, tryAcquire } from "../../mod.ts";
import { VERSION } from "../../src/version.ts";
import {
  cliArgv,
  dead,
  exited,
  finish,
  type Finished,
  hasCommand,
  inTemp,
  repoRoot,
  runtimeName,
  signal,
  start,
  waitFor,
} from "../helpers.ts";

const FLOCK = hasCommand("flock");
const flockSkip = FLOCK ? undefined : "util-linux flock(1) is not on PATH";
if (!FLOCK) console.log(`SKIP side-by-side tests with flock(1): ${flockSkip}`);

const cli = cliArgv;

const runArgv = (argv: string[]): Promise<Finished> => finish(start(argv));

/**
 * A flock(1) process holding `lock` until stopped, in its own process group:
 * flock(1) hands its descriptor to the command, so the whole group must go.
 */
async function flockHolder(lock: string): Promise<ChildProcess> {
  const holder = spawn("flock", [lock, "sh", "-c", "echo held; exec sleep 60"], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  await waitFor(holder, "held");
  return holder;
}

async function stop(holder: ChildProcess): Promise<void> {
  process.kill(-holder.pid!, "SIGKILL");
  await exited(holder);
  await dead(holder.pid!);
}

test(
  `${runtimeName}: cli: exit codes match flock(1) case by case`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const held = join(dir, "held.lock");
    const holder = await flockHolder(held);
    try {
      const free = (name: string) => join(dir, `${name}.lock`);
      const cases: [string, string[]][] = [
        ["free lock", [free("a"), "true"]],
        ["-n on a held lock", ["-n", held, "true"]],
        ["-w 0.2 on a held lock", ["-w", "0.2", held, "true"]],
        ["-w 0 on a held lock", ["-w", "0", held, "true"]],
        ["-E 7 on a held lock", ["-n", "-E", "7", held, "true"]],
        ["-E 0 on a held lock", ["-n", "-E", "0", held, "true"]],
        ["command fails with 3", [free("b"), "sh", "-c", "exit 3"]],
        ["-c fails with 5", [free("c"), "-c", "exit 5"]],
        ["command dies of SIGTERM", [free("d"), "sh", "-c", "kill -TERM $$"]],
        ["command not found", [free("e"), "no-such-command-here"]],
        ["command not executable", [free("f"), join(repoRoot, "README.md")]],
        ["unknown option", ["--bogus", free("g"), "true"]],
        ["unknown short option", ["-q", free("g"), "true"]],
        ["no arguments", []],
        ["-n without lock file", ["-n"]],
        ["-c without its command", [free("h"), "-c"]],
        ["-c with two arguments", [free("h"), "-c", "true", "extra"]],
        ["bad timeout", ["-w", "soon", free("i"), "true"]],
        ["exit code out of range", ["-E", "300", free("j"), "true"]],
        ["lock file in a missing directory", [join(dir, "missing", "x.lock"), "true"]],
        ["bundled short options", ["-nw1", free("k"), "true"]],
        ["--timeout=", ["--timeout=0.1", held, "true"]],
        ["--nb on a held lock", ["--nb", held, "true"]],
        ["--nonblocking on a held lock", ["--nonblocking", held, "true"]],
        ["--nonb (an abbreviation) on a held lock", ["--nonb", held, "true"]],
        ["--wait 0.2 on a held lock", ["--wait", "0.2", held, "true"]],
        ["-e -n on a held lock", ["-e", "-n", held, "true"]],
        ["an ambiguous abbreviation", ["--c", free("l"), "true"]],
        ["-F and -o together", ["-F", "-o", free("m"), "true"]],
        ["-F, the command fails with 3", ["-F", free("p"), "sh", "-c", "exit 3"]],
        ["-F, the command is missing", ["-F", free("q"), "no-such-command-here"]],
        ["a descriptor that is not open", ["-n", "77"]],
        ["one argument that is not a descriptor", [free("n")]],
        ["-u of a file, with a command", ["-u", free("o"), "true"]],
        ["a directory", [dir, "true"]],
      ];
      const results = await Promise.all(
        cases.map(async ([name, args]) => {
          const [ours, theirs] = await Promise.all([
            runArgv(cli(args)),
            runArgv(["flock", ...args]),
          ]);
          return { name, ours, theirs };
        }),
      );
      for (const { name, ours, theirs } of results) {
        assert.equal(
          ours.code,
          theirs.code,
          `${name}: filelock exited ${ours.code} (${ours.stderr.trim()}), flock(1) ${theirs.code}`,
        );
      }
      // Silent on a conflict, as flock(1) is, when stderr is not a terminal and -v is not given.
      const conflict = results.find((r) => r.name === "-n on a held lock")!;
      assert.equal(conflict.ours.stdout, "");
      assert.equal(conflict.ours.stderr, conflict.theirs.stderr, "the same (empty) stderr");
      assert.equal(conflict.ours.stderr, "");
      // With -v: flock(1)'s own line, then ours naming the holder.
      const told = await runArgv(cli(["-v", "-n", held, "true"]));
      assert.equal(told.code, 1);
      assert.equal(told.stdout, "");
      assert.match(
        told.stderr,
        new RegExp(
          `^filelock: failed to get lock\nfilelock: .*held\\.lock is locked, held by pid ${holder.pid} .*flock, exclusive\\)\n$`,
        ),
      );
      const usage = results.find((r) => r.name === "unknown option")!.ours;
      assert.match(usage.stderr, /unrecognized option '--bogus'\nTry 'filelock --help'/);
      const missing = results.find((r) => r.name === "lock file in a missing directory")!.ours;
      assert.match(missing.stderr, /ENOENT: /);
    } finally {
      await stop(holder);
    }
  }),
);

test(
  `${runtimeName}: cli: two invocations serialise, and exclude flock(1) both ways`,
  inTemp(async (dir) => {
    const lock = join(dir, "s.lock");
    const log = join(dir, "log");
    const body = (name: string) =>
      `echo start-${name} >> '${log}'; sleep 0.4; echo end-${name} >> '${log}'`;
    const first = start(cli([lock, "-c", body("a")]));
    const firstDone = finish(first);
    await new Promise((resolve) => setTimeout(resolve, 50));
    while (!existsSync(log)) await new Promise((resolve) => setTimeout(resolve, 10));
    const second = await runArgv(cli([lock, "-c", body("b")]));
    assert.equal((await firstDone).code, 0);
    assert.equal(second.code, 0);
    assert.deepEqual(readFileSync(log, "utf8").trim().split("\n"), [
      "start-a",
      "end-a",
      "start-b",
      "end-b",
    ]);
    if (!FLOCK) return;
    // Our CLI holds: flock(1) -n is refused. flock(1) holds: ours -n is refused.
    const ours = start(cli([lock, "sh", "-c", "echo held; exec sleep 60"]));
    try {
      await waitFor(ours, "held");
      assert.equal((await runArgv(["flock", "-n", lock, "true"])).code, 1);
    } finally {
      signal(ours, "SIGTERM");
      await finish(ours);
    }
    const theirs = await flockHolder(lock);
    try {
      assert.equal((await runArgv(cli(["-n", lock, "true"]))).code, 1);
    } finally {
      await stop(theirs);
    }
  }),
);

test(
  `${runtimeName}: cli: SIGTERM reaches the command, and the lock is free right after`,
  inTemp(async (dir) => {
    const lock = join(dir, "t.lock");
    const marker = join(dir, "marker");
    // The command catches SIGTERM, notes it and exits 0.
    const script = `trap 'echo got-term > "${marker}"; exit 0' TERM; echo ready; ` +
      `while :; do sleep 0.05; done`;
    const wrapper = start(cli([lock, "-c", script]));
    const done = finish(wrapper);
    await waitFor(wrapper, "ready");
    assert.equal(tryAcquire(lock), null, "held while the command runs");
    signal(wrapper, "SIGTERM");
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(readFileSync(marker, "utf8").trim(), "got-term");
    const next = tryAcquire(lock);
    assert.ok(next, "free right after");
    next.releaseSync();

    // A command that dies of the signal: exit 128 + 15, like flock(1).
    const plain = start(cli([lock, "sh", "-c", "echo ready; exec sleep 60"]));
    const plainDone = finish(plain);
    await waitFor(plain, "ready");
    signal(plain, "SIGTERM");
    assert.equal((await plainDone).code, 143);
    assert.equal(inspect(lock).state, "free");
  }),
);

test(
  `${runtimeName}: cli: a command's background child does not keep the lock`,
  inTemp(async (dir) => {
    const lock = join(dir, "bg.lock");
    const pidFile = join(dir, "pid");
    const result = await runArgv(
      cli([lock, "-c", `sleep 30 >/dev/null 2>&1 & echo $! > '${pidFile}'`]),
    );
    assert.equal(result.code, 0, result.stderr);
    const pid = Number(readFileSync(pidFile, "utf8"));
    try {
      assert.ok(existsSync(`/proc/${pid}`), "the background child lives on");
      assert.equal(inspect(lock).state, "free");
      const next = tryAcquire(lock);
      assert.ok(next, "the lock is free although the child lives");
      next.releaseSync();
    } finally {
      process.kill(pid, "SIGKILL");
    }
  }),
);

test(
  `${runtimeName}: cli: --status, --probe, --help, --version and -v`,
  inTemp(async (dir) => {
    const lock = join(dir, "st.lock");
    const free = await runArgv(cli(["--status", lock]));
    assert.equal(free.code, 0);
    // The lock file's filesystem follows on a line of its own (ext4, tmpfs, ... here).
    assert.match(free.stdout, new RegExp(`^free: ${lock}\\nfilesystem: [a-z0-9]+\\n$`));

    if (FLOCK) {
      const holder = await flockHolder(lock);
      try {
        const held = await runArgv(cli(["--status", lock]));
        assert.equal(held.code, 1);
        assert.match(
          held.stdout,
          new RegExp(
            `^held: .*st\\.lock, held by pid ${holder.pid} on host .* \\(flock, exclusive\\)\\nfilesystem: [a-z0-9]+\\n$`,
          ),
        );
        // -v while waiting: the holder on stderr, nothing extra on stdout.
        const waited = await runArgv(cli(["-v", "-w", "0.3", lock, "echo", "out"]));
        assert.equal(waited.code, 1);
        assert.equal(waited.stdout, "");
        assert.match(waited.stderr, new RegExp(`waiting for .*held by pid ${holder.pid}`));
      } finally {
        await stop(holder);
      }
    }
    // -v prints flock(1)'s verbose lines, on stdout as flock(1) does, before the command's output.
    const verbose = await runArgv(cli(["-v", lock, "echo", "out"]));
    assert.match(
      verbose.stdout,
      /^filelock: getting lock took \d+\.\d{6} seconds\nfilelock: executing echo\nout\n$/,
    );
    assert.equal(verbose.stderr, "");

    // A pidfile holder: pid, host, since and backend.
    const pidLock = join(dir, "pid.lock");
    const holder = start(
      cli(["--backend", "pidfile", pidLock, "sh", "-c", "echo held; exec sleep 60"]),
    );
    try {
      await waitFor(holder, "held");
      const held = await runArgv(cli(["--backend", "pidfile", "--status", pidLock]));
      assert.equal(held.code, 1);
      assert.match(
        held.stdout,
        new RegExp(`held by pid ${holder.pid} on host \\S+ since \\d{4}-.*Z \\(pidfile, exclusive`),
      );
    } finally {
      signal(holder, "SIGTERM");
      await finish(holder);
    }
    assert.ok(!existsSync(pidLock), "released after SIGTERM");

    const probed = await runArgv(cli(["--probe"]));
    assert.equal(probed.code, 0);
    const result = JSON.parse(probed.stdout);
    assert.equal(result.runtime, runtimeName);
    assert.equal(typeof result.reason, "string");

    const help = await runArgv(cli(["--help"]));
    assert.equal(help.code, 0);
    for (
      const option of [
        "--shared",
        "--exclusive",
        "--nonblock",
        "--timeout",
        "--conflict-exit-code",
        "--command",
        "--remove",
        "--backend",
        "--verbose",
        "--status",
        "--probe",
        "--help",
        "--version",
      ]
    ) {
      assert.ok(help.stdout.includes(option), `--help mentions ${option}`);
    }
    const version = await runArgv(cli(["--version"]));
    assert.equal(version.stdout, `filelock ${VERSION}\n`);
    const denoJson = JSON.parse(readFileSync(join(repoRoot, "deno.json"), "utf8"));
    assert.equal(VERSION, denoJson.version, "src/version.ts matches deno.json");
    const packageJson = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    assert.equal(VERSION, packageJson.version, "src/version.ts matches package.json");
    writeFileSync(join(dir, "unused"), "");
  }),
);

test(
  `${runtimeName}: cli: --remove, --shared and the npm bin launcher`,
  inTemp(async (dir) => {
    const lock = join(dir, "r.lock");
    assert.equal((await runArgv(cli(["--remove", lock, "true"]))).code, 0);
    assert.ok(!existsSync(lock), "--remove removed the lock file");
    const reader = start(cli(["-s", lock, "sh", "-c", "echo held; exec sleep 60"]));
    try {
      await waitFor(reader, "held");
      assert.equal((await runArgv(cli(["-s", "-n", lock, "true"]))).code, 0, "shared + shared");
      assert.equal((await runArgv(cli(["-x", "-n", lock, "true"]))).code, 1, "shared + exclusive");
    } finally {
      signal(reader, "SIGTERM");
      await finish(reader);
    }
    const launched = await runArgv(["node", join(repoRoot, "bin", "filelock.mjs"), "--version"]);
    assert.equal(launched.stdout, `filelock ${VERSION}\n`);
  }),
);

/** Kills `filelock` itself while its command runs; whether the lock stays held until the command ends. */
async function killedWhileRunning(dir: string, signal: NodeJS.Signals, extra: string[]) {
  const lock = join(dir, `${signal}.lock`);
  const ready = join(dir, `${signal}.ready`);
  const done = join(dir, `${signal}.done`);
  // The command keeps no pipe of ours open: it would outlive filelock.
  const wrapper = start(
    cli([
      ...extra,
      lock,
      "sh",
      "-c",
      `exec >/dev/null 2>&1; touch '${ready}'; sleep 1.5; touch '${done}'`,
    ]),
  );
  const startedAt = performance.now();
  while (!existsSync(ready)) {
    // A CLI that failed to start never gets there: fail instead of waiting forever.
    assert.equal(wrapper.exitCode, null, "filelock ended before its command started");
    assert.ok(performance.now() - startedAt < 30_000, "the command did not start in 30 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  process.kill(wrapper.pid!, signal);
  await exited(wrapper);
  await dead(wrapper.pid!);
  const heldAfterDeath = tryAcquire(lock);
  const commandStillRunning = !existsSync(done);
  heldAfterDeath?.releaseSync();
  while (!existsSync(done)) await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 100)); // the command exits after touching
  const afterCommand = tryAcquire(lock);
  afterCommand?.releaseSync();
  return { heldWhileCommandRuns: heldAfterDeath === null, commandStillRunning, afterCommand };
}

for (const signal of ["SIGKILL", "SIGHUP", "SIGQUIT"] as const) {
  test(
    `${runtimeName}: cli: filelock killed by ${signal} leaves the lock with its running command`,
    inTemp(async (dir) => {
      const result = await killedWhileRunning(dir, signal, []);
      assert.ok(result.commandStillRunning, "the command outlived filelock");
      assert.ok(
        result.heldWhileCommandRuns,
        "the command holds the lock: no overlap with the next run",
      );
      assert.ok(result.afterCommand, "free once the command ends");
    }),
  );
}

test(
  `${runtimeName}: cli: control: with -o the command does not inherit, and a killed filelock frees the lock`,
  inTemp(async (dir) => {
    const result = await killedWhileRunning(dir, "SIGKILL", ["-o"]);
    assert.ok(result.commandStillRunning);
    assert.equal(result.heldWhileCommandRuns, false, "the next run would overlap the command");
  }),
);
