// `npm run bench`: every backend in every runtime against C references and the npm peers,
// in one run on one machine, the references interleaved with the runs they are compared
// to (a reference measured once up front drifts with the machine's load). Prints the
// tables and the targets, writes bench/results.json and bench/results.svg. `--smoke` runs
// tiny sizes (the test suite does, so that the benchmark cannot rot) and writes nothing.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const smoke = process.argv.includes("--smoke");
const bin = (name) => join(root, "node_modules", ".bin", name);
const worker = join(root, "bench", "worker.ts");
const scratch = mkdtempSync(join(tmpdir(), "filelock-bench-"));
const S = smoke
  ? {
    n: 300,
    rounds: 2,
    peerN: 20,
    procs: [1, 2],
    contendedMs: 150,
    handoffs: 12,
    longHolds: 2,
    scale: [1, 100],
    cold: 1,
    waitMs: 300,
  }
  : {
    n: 20000,
    rounds: 7,
    peerN: 2000,
    procs: [1, 2, 4, 8],
    contendedMs: 1000,
    handoffs: 200,
    longHolds: 8,
    scale: [1, 100, 10000],
    cold: 7,
    waitMs: 3000,
  };

// Node runs the worker bundled (as npm users run the built package), not through tsx, whose
// start-up would swamp every measurement that spawns a process.
const nodeWorker = join(root, ".cache", "bench", "worker.mjs"); // beside node_modules
await build({
  entryPoints: [worker],
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["koffi", "bun:ffi", "proper-lockfile", "lockfile"],
  outfile: nodeWorker,
  logLevel: "warning",
  logOverride: { "empty-import-meta": "silent" },
});
const RUNTIMES = {
  deno: (args) => [bin("deno"), "run", "-A", "--v8-flags=--expose-gc", worker, ...args],
  bun: (args) => [bin("bun"), worker, ...args],
  node: (args) => ["node", "--expose-gc", nodeWorker, ...args],
};
const KERNEL = { deno: ["ffi", "native"], bun: ["ffi"], node: ["ffi"] };
const BACKEND_NAME = {
  "deno:ffi": "deno-ffi",
  "deno:native": "deno-native",
  "bun:ffi": "bun-ffi",
  "node:ffi": "node-koffi",
};
const label = (runtime, backend) =>
  backend === "pidfile" ? `pidfile (${runtime})` : BACKEND_NAME[`${runtime}:${backend}`];

let counter = 0;
const fresh = (name) => join(scratch, `${name}-${counter++}`);
const skipped = [];
const now = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC, as the workers'

function lastJson(text, what) {
  const line = text.trim().split("\n").at(-1);
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${what}: no result: ${text.slice(-500)}`);
  }
}

function runJson(argv) {
  const result = spawnSync(argv[0], argv.slice(1), {
    encoding: "utf8",
    cwd: root,
    maxBuffer: 1 << 26,
  });
  if (result.status !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr}`);
  return lastJson(result.stdout, argv.join(" "));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Jain's fairness index of per-process counts: 1 when equal, 1/n when one takes all. */
function jain(counts) {
  const sum = counts.reduce((a, b) => a + b, 0);
  const squares = counts.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : (sum * sum) / (counts.length * squares);
}

// ---- references ---------------------------------------------------------------------

let reference;
const cc = spawnSync("cc", [
  "-O2",
  "-o",
  join(scratch, "reference"),
  join(root, "bench", "reference.c"),
]);
if (cc.status === 0) {
  reference = join(scratch, "reference");
} else {
  skipped.push("C references: no C compiler (cc) here; apt-get install gcc");
}
const cNs = (args) => Number(spawnSync(reference, args, { encoding: "utf8" }).stdout);

console.log(
  `filelock benchmark${smoke ? " (smoke)" : ""}: ${cpus().length} cores, ${
    cpus()[0]?.model ?? "?"
  }`,
);

// ---- 1. uncontended cycle, interleaved round by round --------------------------------

const variants = [];
if (reference) {
  variants.push({
    name: "C reference, the library's syscalls (open+flock+fstat+lstat+unlock+close)",
    mode: "sync",
    run: () => cNs(["cycle", fresh("c.lock"), String(S.n)]),
  });
  variants.push({
    name: "C minimal (open+flock+close)",
    mode: "sync",
    run: () => cNs(["cycle-min", fresh("cm.lock"), String(S.n)]),
  });
}
for (const [runtime, backends] of Object.entries(KERNEL)) {
  for (const backend of backends) {
    for (const mode of ["sync", "async"]) {
      variants.push({
        name: label(runtime, backend),
        mode,
        run: () =>
          runJson(RUNTIMES[runtime](["cycle", backend, mode, fresh("cycle.lock"), String(S.n)])).ns,
      });
    }
  }
}
variants.push({
  name: "Deno FsFile open+tryLock+lstat+unlock+close (reference for deno-native)",
  mode: "sync",
  run: () => runJson(RUNTIMES.deno(["trylock", fresh("t.lock"), String(S.n)])).ns,
});
const pidfileVariants = [];
if (reference) {
  pidfileVariants.push({
    name: "C pidfile floor (create-exclusive, write, read back, unlink)",
    mode: "sync",
    run: () => cNs(["pidfile", fresh("cp.lock"), String(Math.ceil(S.n / 4))]),
  });
}
for (const runtime of Object.keys(RUNTIMES)) {
  pidfileVariants.push({
    name: label(runtime, "pidfile"),
    mode: "sync",
    run: () =>
      runJson(
        RUNTIMES[runtime]([
          "cycle",
          "pidfile",
          "sync",
          fresh("pf.lock"),
          String(Math.ceil(S.n / 4)),
        ]),
      ).ns,
  });
}

/**
 * Every variant's median over the rounds, and its median ratio to the group's reference
 * (the first variant) measured right before it in the same round: on a shared machine whose
 * speed drifts by tens of percent within a minute, a ratio of adjacent runs is what holds.
 */
function interleaved(list) {
  const [reference] = list;
  const samples = list.map(() => []);
  const ratios = list.map(() => []);
  for (let round = 0; round < S.rounds; round++) {
    list.forEach((variant, i) => {
      const before = i === 0 ? undefined : reference.run();
      const ns = variant.run();
      samples[i].push(ns);
      ratios[i].push(before === undefined ? 1 : ns / before);
    });
  }
  return list.map((variant, i) => ({
    name: variant.name,
    mode: variant.mode,
    ns: median(samples[i]),
    ratio: reference.name.startsWith("C ") ? median(ratios[i]) : undefined,
  }));
}

const cycles = [...interleaved(variants), ...interleaved(pidfileVariants)];
cycles.push({
  name: "proper-lockfile (npm)",
  mode: "sync",
  ...runJson(RUNTIMES.node(["peer", "proper-lockfile", fresh("p.lock"), String(S.peerN)])),
});
cycles.push({
  name: "lockfile (npm)",
  mode: "sync",
  ...runJson(RUNTIMES.node(["peer", "lockfile", fresh("l.lock"), String(S.peerN * 5)])),
});
const cycleOf = (name, mode = "sync") => cycles.find((c) => c.name === name && c.mode === mode);
const cFull = cycles.find((c) => c.name.startsWith("C reference"));
// The npm peers against the C reference's median (they are not interleaved).
for (const c of cycles) c.ratio ??= cFull ? c.ns / cFull.ns : undefined;

// ---- 2. contended throughput and fairness, each case >= 1 s behind a start barrier ----

/** Runs `argvs` together from one start time (written into `go`); their last JSON lines. */
async function together(argvs, go) {
  const children = argvs.map((argv) =>
    spawn(argv[0], argv.slice(1), { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
  );
  const outputs = children.map(() => "");
  const errors = children.map(() => "");
  children.forEach((c, i) => {
    c.stdout.on("data", (d) => (outputs[i] += d));
    c.stderr.on("data", (d) => (errors[i] += d));
  });
  const done = children.map((c) => new Promise((resolve) => c.on("close", resolve)));
  while (!outputs.every((o) => o.includes("ready"))) {
    if (children.some((c) => c.exitCode !== null)) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  writeFileSync(go, String(now() + 50)); // every process starts at the same moment
  const codes = await Promise.all(done);
  codes.forEach((code, i) => {
    if (code !== 0) throw new Error(`${argvs[i].join(" ")} exited ${code}: ${errors[i]}`);
  });
  return outputs.map((o, i) => lastJson(o, argvs[i].join(" ")));
}

/** One contended case: `procs` copies of `argv(lock, counter, go)`; ops/s and fairness. */
async function contendedCase(procs, argv) {
  const lock = fresh("k.lock"), count = fresh("counter"), go = fresh("go");
  writeFileSync(count, "0".padStart(16, "0"));
  const results = await together(Array.from({ length: procs }, () => argv(lock, count, go)), go);
  const counts = results.map((r) => r.count);
  const total = counts.reduce((a, b) => a + b, 0);
  if (Number(readFileSync(count, "utf8")) !== total) {
    throw new Error(`${argv("", "", "").join(" ")}: the counter is not exact`);
  }
  return { opsPerSecond: total / (S.contendedMs / 1000), fairness: jain(counts) };
}

const contended = [];
for (const procs of S.procs) {
  const row = { procs };
  const cCase = (how) => (lock, count, go) => [
    reference,
    "counter",
    lock,
    count,
    go,
    String(S.contendedMs),
    how,
  ];
  if (reference) row.cBlocking = await contendedCase(procs, cCase("blocking"));
  for (const runtime of Object.keys(RUNTIMES)) {
    // Each runtime right after its own C reference run.
    if (reference) row[`cSame:${runtime}`] = await contendedCase(procs, cCase("same"));
    for (const mode of ["async", "sync"]) {
      row[`${runtime}:${mode}`] = await contendedCase(
        procs,
        (lock, count, go) =>
          RUNTIMES[runtime](["count", "ffi", mode, lock, count, go, String(S.contendedMs)]),
      );
    }
  }
  contended.push(row);
}

// ---- 3. hand-off latency ------------------------------------------------------------

/** Hand-offs between `procs` processes of `argv(lock, stamp, go)`: p50, p99 (ms). */
async function handoffCase(procs, argv) {
  const lock = fresh("h.lock"), stamp = fresh("stamp"), go = fresh("go");
  const results = await together(Array.from({ length: procs }, () => argv(lock, stamp, go)), go);
  const latencies = results.flatMap((r) => r.latencies);
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    samples: latencies.length,
  };
}

const HANDOFF_CASES = [
  { name: "hold 2 ms, pause 5 ms", holdUs: 2000, pauseUs: 5000, procs: 5 },
  { name: "hold 2 ms, pause 1 ms (shorter than the hold)", holdUs: 2000, pauseUs: 1000, procs: 5 },
];
const handoff = [];
for (const c of HANDOFF_CASES) {
  const each = String(Math.ceil(S.handoffs / c.procs));
  const args = (lock, stamp, go) => [lock, stamp, go, each, String(c.holdUs), String(c.pauseUs)];
  if (reference) {
    handoff.push({
      case: c.name,
      runtime: "C",
      mode: "blocking",
      ...await handoffCase(
        c.procs,
        (lock, stamp, go) => [reference, "handoff", ...args(lock, stamp, go)],
      ),
    });
  }
  for (const runtime of Object.keys(RUNTIMES)) {
    for (const mode of ["async", "sync", "blocking"]) {
      handoff.push({
        case: c.name,
        runtime,
        mode,
        ...await handoffCase(
          c.procs,
          (lock, stamp, go) => RUNTIMES[runtime](["handoff", mode, ...args(lock, stamp, go)]),
        ),
      });
    }
  }
}
// After a long hold: a waiter asleep for 300 ms (no poll due soon) is handed the lock.
for (const runtime of Object.keys(RUNTIMES)) {
  for (const mode of ["async", "blocking"]) {
    handoff.push({
      case: "hold 300 ms",
      runtime,
      mode,
      ...await handoffCase(
        2,
        (lock, stamp, go) =>
          RUNTIMES[runtime]([
            "handoff",
            mode,
            lock,
            stamp,
            go,
            String(S.longHolds),
            "300000",
            "50000",
          ]),
      ),
    });
  }
}

// ---- 4. waiting CPU ---------------------------------------------------------------------

function cpuTicks(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

const waitingCpu = [];
if (existsSync("/proc/self/stat")) {
  for (const runtime of Object.keys(RUNTIMES)) {
    const lock = fresh("w.lock"), release = fresh("release");
    const holderArgv = RUNTIMES.node(["hold", lock, release]);
    const holder = spawn(holderArgv[0], holderArgv.slice(1), {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((resolve) => holder.stdout.once("data", resolve));
    const argv = RUNTIMES[runtime](["wait", "ffi", lock]);
    const child = spawn(argv[0], argv.slice(1), {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    await new Promise((resolve) => setTimeout(resolve, 300)); // past start-up
    const t0 = performance.now(), c0 = cpuTicks(child.pid);
    await new Promise((resolve) => setTimeout(resolve, S.waitMs));
    const c1 = cpuTicks(child.pid), t1 = performance.now();
    writeFileSync(release, "");
    await Promise.all([child, holder].map((c) => new Promise((resolve) => c.on("close", resolve))));
    waitingCpu.push({ runtime, percentOfCore: (((c1 - c0) / 100) / ((t1 - t0) / 1000)) * 100 });
  }
} else {
  skipped.push("waiting CPU: no /proc here");
}

// ---- 5. scale ---------------------------------------------------------------------------

const scale = [];
for (const runtime of Object.keys(RUNTIMES)) {
  for (const count of S.scale) {
    const dir = mkdtempSync(join(scratch, "scale-"));
    scale.push({
      runtime,
      count,
      ...runJson(RUNTIMES[runtime](["scale", "ffi", dir, String(count)])),
    });
  }
}

// ---- 6. cold start: an empty script against one that takes a first lock, interleaved ----
// Node loads the built package (dist/), as npm users do; Deno and Bun the TypeScript.

const coldArgv = {
  deno: (script, args) => [bin("deno"), "run", "-A", join(root, "bench", script), ...args],
  bun: (script, args) => [bin("bun"), join(root, "bench", script), ...args],
  node: (script, args) => ["node", join(root, "bench", script), ...args],
};
const cold = [];
for (const runtime of Object.keys(RUNTIMES)) {
  const lock = fresh("cold.lock");
  const empty = [], locked = [];
  const time = (argv) => {
    const started = performance.now();
    const result = spawnSync(argv[0], argv.slice(1), { stdio: "ignore" });
    if (result.status !== 0) throw new Error(`${argv.join(" ")} exited ${result.status}`);
    return performance.now() - started;
  };
  for (let i = 0; i < S.cold; i++) {
    empty.push(time(coldArgv[runtime]("empty.mjs", [])));
    locked.push(time(coldArgv[runtime](runtime === "node" ? "cold.mjs" : "cold.ts", [lock])));
  }
  const nothingMs = median(empty), firstLockMs = median(locked);
  cold.push({ runtime, nothingMs, firstLockMs, extraMs: firstLockMs - nothingMs });
}

// ---- 7. CLI start ---------------------------------------------------------------------
// The `filelock` command from process start to its command having run (here `true`),
// against the same runtime doing nothing, interleaved round by round.

const cliStarts = [];
{
  const lock = fresh("cli.lock");
  const variants = [
    ["node (empty script)", ["node", join(root, "bench", "empty.mjs")]],
    ["filelock (node, the npm bin)", ["node", join(root, "bin", "filelock.mjs"), lock, "true"]],
    ["bun (empty script)", [bin("bun"), join(root, "bench", "empty.mjs")]],
    ["filelock (bunx --bun)", [bin("bun"), join(root, "bin", "filelock.mjs"), lock, "true"]],
    ["deno (empty script)", [bin("deno"), "run", join(root, "bench", "empty.mjs")]],
    ["filelock (deno run -A, TypeScript)", [
      bin("deno"),
      "run",
      "-A",
      join(root, "src", "cli", "main.ts"),
      lock,
      "true",
    ]],
    ["flock(1)", ["flock", lock, "true"]],
  ];
  const samples = variants.map(() => []);
  for (let round = 0; round < S.cold * 2; round++) {
    variants.forEach(([, argv], i) => {
      const started = performance.now();
      const result = spawnSync(argv[0], argv.slice(1), { stdio: "ignore" });
      if (result.status === 0) samples[i].push(performance.now() - started);
    });
  }
  variants.forEach(([name], i) => cliStarts.push({ name, ms: median(samples[i]) }));
}

rmSync(scratch, { recursive: true, force: true });

// ---- targets (issue 16), each a ratio within this run ----------------------------------

const f = (x, digits = 2) => (typeof x !== "number" || Number.isNaN(x) ? "—" : x.toFixed(digits));
const targets = [];
const target = (what, value, limit, met) => targets.push({ what, value, limit, met });
for (const [name, limit] of [["deno-ffi", 1.25], ["bun-ffi", 1.25], ["node-koffi", 1.35]]) {
  const c = cycleOf(name);
  if (c?.ratio !== undefined) {
    target(
      `uncontended ${name} / C (same syscalls)`,
      `${f(c.ratio)}x`,
      `<= ${limit}x`,
      c.ratio <= limit,
    );
  }
}
{
  const native = cycleOf("deno-native");
  const fsFile = cycles.find((c) => c.name.startsWith("Deno FsFile"));
  if (native && fsFile) {
    const ratio = native.ns / fsFile.ns;
    target(
      "uncontended deno-native / Deno's own FsFile calls",
      `${f(ratio)}x`,
      "<= 1.5x",
      ratio <= 1.5,
    );
  }
}
{
  const floor = cycles.find((c) => c.name.startsWith("C pidfile floor"));
  for (const runtime of Object.keys(RUNTIMES)) {
    const c = cycleOf(label(runtime, "pidfile"));
    if (floor && c?.ratio !== undefined) {
      target(`pidfile ${runtime} / C pidfile floor`, `${f(c.ratio)}x`, "<= 3x", c.ratio <= 3);
    }
  }
}
for (const row of contended.filter((r) => r.procs >= 2)) {
  for (const runtime of Object.keys(RUNTIMES)) {
    const c = row[`cSame:${runtime}`], js = row[`${runtime}:async`];
    if (c && js) {
      const ratio = js.opsPerSecond / c.opsPerSecond;
      target(
        `contended async ${runtime}, ${row.procs} processes / C (same syscalls)`,
        `${f(ratio)}x`,
        ">= 0.8x",
        ratio >= 0.8,
      );
    }
    if (js && [2, 4, 8].includes(row.procs)) {
      target(
        `fairness ${runtime} async, ${row.procs} processes (Jain)`,
        f(js.fairness),
        ">= 0.8",
        js.fairness >= 0.8,
      );
    }
  }
}
const handoffOf = (kase, runtime, mode) =>
  handoff.find((h) => h.case === kase && h.runtime === runtime && h.mode === mode);
for (const runtime of Object.keys(RUNTIMES)) {
  for (const kase of HANDOFF_CASES.map((c) => c.name)) {
    const async = handoffOf(kase, runtime, "async"), floor = handoffOf(kase, runtime, "blocking");
    if (async && floor) {
      const ratio = async.p50 / floor.p50;
      target(
        `hand-off p50 ${runtime} async / acquireSync without timeout (${kase})`,
        `${f(ratio)}x`,
        "<= 2x",
        ratio <= 2,
      );
      target(
        `hand-off p99 ${runtime} async, 4 waiters (${kase})`,
        `${f(async.p99)} ms`,
        "<= 2 ms",
        async.p99 <= 2,
      );
    }
  }
  const long = handoffOf("hold 300 ms", runtime, "async");
  if (long) {
    target(
      `hand-off p50 ${runtime} async after a 300 ms hold`,
      `${f(long.p50)} ms`,
      "<= 1 ms",
      long.p50 <= 1,
    );
  }
}
for (const w of waitingCpu) {
  target(
    `waiting CPU ${w.runtime}`,
    `${f(w.percentOfCore, 2)}%`,
    "<= 0.5%",
    w.percentOfCore <= 0.5,
  );
}
{
  const nodeNothing = cliStarts.find((c) => c.name === "node (empty script)")?.ms;
  const nodeCli = cliStarts.find((c) => c.name.startsWith("filelock (node"))?.ms;
  if (nodeNothing && nodeCli) {
    target(
      "filelock start (node) / node (empty script)",
      `${f(nodeCli / nodeNothing)}x`,
      "<= 3x",
      nodeCli / nodeNothing <= 3,
    );
  }
}
for (const runtime of Object.keys(RUNTIMES)) {
  const one = scale.find((s) => s.runtime === runtime && s.count === 1);
  const many = scale.find((s) => s.runtime === runtime && s.count === 10000);
  if (one && many) {
    target(
      `10,000 locks ${runtime}: time per lock / 1 lock`,
      `${f(many.ns / one.ns)}x`,
      "<= 1.5x",
      many.ns / one.ns <= 1.5,
    );
    target(
      `10,000 locks ${runtime}: heap per lock`,
      `${f(many.heapPerLock / 1024)} KB`,
      "<= 2 KB",
      many.heapPerLock <= 2048,
    );
  }
}

// ---- report ----------------------------------------------------------------------------

console.log(
  "\nUncontended cycle (exclusive acquire + release, lock file kept), median ns per cycle; × C: median ratio to the C reference run just before (pidfile rows: to the C pidfile floor)",
);
console.log("| backend | mode | ns | × C |\n| --- | --- | ---: | ---: |");
for (const c of cycles) console.log(`| ${c.name} | ${c.mode} | ${f(c.ns, 0)} | ${f(c.ratio)} |`);
console.log(
  `\nContended throughput (ops/s: lock, pread + pwrite of a counter, release; ${S.contendedMs} ms a case, counts exact) and fairness (Jain's index of per-process counts)`,
);
const cols = [
  "C blocking",
  ...Object.keys(RUNTIMES).flatMap((r) => [`C same (${r})`, `${r} async`, `${r} sync`]),
];
console.log(`| processes | ${cols.join(" | ")} |\n| ---: |${cols.map(() => " ---: |").join("")}`);
for (const r of contended) {
  const cell = (x) => (x ? `${f(x.opsPerSecond, 0)} (${f(x.fairness)})` : "—");
  const cells = [
    cell(r.cBlocking),
    ...Object.keys(RUNTIMES).flatMap((k) => [
      cell(r[`cSame:${k}`]),
      cell(r[`${k}:async`]),
      cell(r[`${k}:sync`]),
    ]),
  ];
  console.log(`| ${r.procs} | ${cells.join(" | ")} |`);
}
console.log("\nHand-off latency (release -> next holder in another process), ms");
console.log(
  "| case | runtime | wait | p50 | p99 | samples |\n| --- | --- | --- | ---: | ---: | ---: |",
);
for (const h of handoff) {
  console.log(
    `| ${h.case} | ${h.runtime} | ${h.mode} | ${f(h.p50, 3)} | ${f(h.p99, 3)} | ${h.samples} |`,
  );
}
console.log("\nWaiting CPU (% of one core while waiting for a held lock)");
for (const w of waitingCpu) console.log(`| ${w.runtime} | ${f(w.percentOfCore, 2)}% |`);
console.log("\nScale (one process holding N distinct locks)");
console.log(
  "| runtime | locks | ns per lock | heap bytes per lock |\n| --- | ---: | ---: | ---: |",
);
for (const s of scale) {
  console.log(`| ${s.runtime} | ${s.count} | ${f(s.ns, 0)} | ${f(s.heapPerLock, 0)} |`);
}
console.log("\nCold start (process start -> exit), ms, interleaved");
console.log("| runtime | empty script | first lock taken | extra |\n| --- | ---: | ---: | ---: |");
for (const c of cold) {
  console.log(
    `| ${c.runtime} | ${f(c.nothingMs, 0)} | ${f(c.firstLockMs, 0)} | ${f(c.extraMs, 0)} |`,
  );
}
console.log("\nCLI start (process start -> command run and exited), ms, interleaved");
console.log("| command | ms |\n| --- | ---: |");
for (const c of cliStarts) console.log(`| ${c.name} | ${f(c.ms, 1)} |`);

// A smoke run's sizes are too small for its figures to be judged against targets.
if (!smoke) {
  console.log("\nTargets");
  console.log("| target | measured | limit | |\n| --- | ---: | ---: | --- |");
  for (const t of targets) {
    console.log(`| ${t.what} | ${t.value} | ${t.limit} | ${t.met ? "met" : "MISSED"} |`);
  }
}
for (const s of skipped) console.log(`SKIP ${s}`);
if (smoke) console.log("smoke run complete");

if (!smoke) {
  const results = {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cycles,
    contended,
    handoff,
    waitingCpu,
    scale,
    cold,
    cliStarts,
    targets,
    skipped,
  };
  writeFileSync(join(root, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, "bench", "results.svg"), chart(cycles));
  console.log("\nwrote bench/results.json and bench/results.svg");
}

/** A horizontal bar chart of the uncontended cycle, log scale, as SVG. */
function chart(rows) {
  const width = 860, barLeft = 430, rowHeight = 22, top = 40;
  const height = top + rows.length * rowHeight + 30;
  const max = Math.log10(Math.max(...rows.map((r) => r.ns)));
  const min = Math.log10(Math.min(...rows.map((r) => r.ns))) - 0.3;
  const x = (ns) => barLeft + ((Math.log10(ns) - min) / (max - min)) * (width - barLeft - 90);
  const escape = (t) => t.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  const bars = rows.map((r, i) => {
    const y = top + i * rowHeight;
    const color = r.name.startsWith("C ")
      ? "#555"
      : r.name.includes("npm") || r.name.includes("reference")
      ? "#bbb"
      : r.name.startsWith("pidfile")
      ? "#e8a33d"
      : "#3d7be8";
    return `<text x="${barLeft - 8}" y="${y + 15}" text-anchor="end">${escape(r.name)} ${
      r.mode === "async" ? "(await)" : ""
    }</text>` +
      `<rect x="${barLeft}" y="${y + 3}" width="${Math.max(1, x(r.ns) - barLeft)}" height="${
        rowHeight - 6
      }" fill="${color}"/>` +
      `<text x="${x(r.ns) + 5}" y="${y + 15}">${
        (r.ns / 1000).toFixed(r.ns < 10000 ? 1 : 0)
      } µs</text>`;
  }).join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="14" font-weight="bold">Uncontended lock + release cycle (median, log scale; shorter is faster)</text>
${bars}
<text x="10" y="${height - 10}" fill="#666">${
    escape(new Date().toISOString().slice(0, 10))
  }, ${cpus().length} cores; bench/results.json has every figure</text>
</svg>
`;
}
