// `npm run bench`: every backend in every runtime against a C reference and
// the npm peers, in one run on one machine. Prints a table, writes
// bench/results.json and bench/results.svg. `--smoke` runs tiny sizes (the
// test suite does, so that the benchmark cannot rot) and writes nothing.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const smoke = process.argv.includes("--smoke");
const bin = (name) => join(root, "node_modules", ".bin", name);
const worker = join(root, "bench", "worker.ts");
const scratch = mkdtempSync(join(tmpdir(), "filelock-bench-"));
const S = smoke
  ? {
    n: 200,
    rounds: 2,
    peerN: 20,
    count: 20,
    procs: [1, 2],
    handoffs: 12,
    scale: [1, 100],
    cold: 1,
    waitMs: 400,
  }
  : {
    n: 20000,
    rounds: 7,
    peerN: 2000,
    count: 400,
    procs: [1, 2, 4, 8],
    handoffs: 200,
    scale: [1, 100, 10000],
    cold: 5,
    waitMs: 3000,
  };

const RUNTIMES = {
  deno: (args) => [bin("deno"), "run", "-A", "--v8-flags=--expose-gc", worker, ...args],
  bun: (args) => [bin("bun"), worker, ...args],
  node: (args) => ["node", "--expose-gc", "--import", "tsx", worker, ...args],
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

function runJson(argv) {
  const result = spawnSync(argv[0], argv.slice(1), {
    encoding: "utf8",
    cwd: root,
    maxBuffer: 1 << 26,
  });
  if (result.status !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split("\n").at(-1));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---- references -----------------------------------------------------------

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
  skipped.push("C reference: no C compiler (cc) here");
}

function cCycle() {
  const values = [];
  for (let r = 0; r < S.rounds; r++) {
    const out = spawnSync(reference, ["cycle", fresh("c.lock"), String(S.n)], { encoding: "utf8" });
    values.push(Number(out.stdout));
  }
  return median(values);
}

// ---- 1. uncontended cycle ---------------------------------------------------

console.log(
  `filelock benchmark${smoke ? " (smoke)" : ""}: ${cpus().length} cores, ${
    cpus()[0]?.model ?? "?"
  }`,
);
const cycles = [];
const cReference = reference ? cCycle() : undefined;
if (cReference) {
  cycles.push({
    name: "C reference (open+flock+fstat+lstat+unlock+close)",
    mode: "sync",
    ns: cReference,
  });
}
for (const [runtime, backends] of Object.entries(KERNEL)) {
  for (const backend of [...backends, "pidfile"]) {
    for (const mode of ["sync", "async"]) {
      const n = backend === "pidfile" ? Math.ceil(S.n / 4) : S.n;
      const { ns } = runJson(
        RUNTIMES[runtime]([
          "cycle",
          backend,
          mode,
          fresh("cycle.lock"),
          String(n),
          String(S.rounds),
        ]),
      );
      cycles.push({ name: label(runtime, backend), mode, ns });
    }
  }
}
cycles.push({
  name: "Deno FsFile.tryLock loop (reference)",
  mode: "sync",
  ...runJson(RUNTIMES.deno(["trylock", fresh("t.lock"), String(S.n), String(S.rounds)])),
});
cycles.push({
  name: "proper-lockfile (npm)",
  mode: "sync",
  ...runJson(
    RUNTIMES.node(["peer", "proper-lockfile", fresh("p.lock"), String(S.peerN), String(S.rounds)]),
  ),
});
cycles.push({
  name: "lockfile (npm)",
  mode: "sync",
  ...runJson(
    RUNTIMES.node(["peer", "lockfile", fresh("l.lock"), String(S.peerN * 5), String(S.rounds)]),
  ),
});
for (const c of cycles) c.ratio = cReference ? c.ns / cReference : undefined;

// ---- 2. contended throughput -----------------------------------------------

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
  const started = performance.now();
  writeFileSync(go, "");
  const codes = await Promise.all(done);
  const seconds = (performance.now() - started) / 1000;
  codes.forEach((code, i) => {
    if (code !== 0) throw new Error(`${argvs[i].join(" ")} exited ${code}: ${errors[i]}`);
  });
  return { seconds, results: outputs.map((o) => JSON.parse(o.trim().split("\n").at(-1))) };
}

const contended = [];
for (const procs of S.procs) {
  const row = { procs };
  if (reference) {
    const lock = fresh("cc.lock"), count = fresh("counter");
    writeFileSync(count, "0".padStart(16, "0"));
    const started = performance.now();
    await Promise.all(Array.from({ length: procs }, () =>
      new Promise((resolve) => {
        spawn(reference, ["counter", lock, count, String(S.count)]).on("close", resolve);
      })));
    row.c = (procs * S.count) / ((performance.now() - started) / 1000);
    if (Number(readFileSync(count, "utf8")) !== procs * S.count) {
      throw new Error("C counter not exact");
    }
  }
  for (const runtime of Object.keys(RUNTIMES)) {
    const lock = fresh("k.lock"), count = fresh("counter"), go = fresh("go");
    writeFileSync(count, "0".padStart(16, "0"));
    const argvs = Array.from(
      { length: procs },
      () => RUNTIMES[runtime](["count", "ffi", lock, count, String(S.count), go]),
    );
    const { seconds } = await together(argvs, go);
    const total = Number(readFileSync(count, "utf8"));
    if (total !== procs * S.count) {
      throw new Error(`${runtime} counter: ${total} of ${procs * S.count}`);
    }
    row[runtime] = (procs * S.count) / seconds;
  }
  contended.push(row);
}

// ---- 3. hand-off latency and waiting CPU -----------------------------------

const handoff = [];
for (const runtime of Object.keys(RUNTIMES)) {
  for (const waiters of [1, 4]) {
    const lock = fresh("h.lock"), stamp = fresh("stamp"), go = fresh("go");
    writeFileSync(stamp, "");
    const procs = waiters + 1;
    const each = Math.ceil(S.handoffs / procs);
    const argvs = Array.from(
      { length: procs },
      () => RUNTIMES[runtime](["handoff", "ffi", lock, stamp, String(each), go]),
    );
    const { results } = await together(argvs, go);
    const latencies = results.flatMap((r) => r.latencies);
    handoff.push({
      runtime,
      waiters,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      samples: latencies.length,
    });
  }
}

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

// ---- 4. scale -----------------------------------------------------------------

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

// ---- 5. cold start -------------------------------------------------------------

const cold = [];
for (const runtime of Object.keys(RUNTIMES)) {
  const time = (args) => {
    const values = [];
    for (let i = 0; i < S.cold; i++) {
      const started = performance.now();
      runJson(RUNTIMES[runtime](args));
      values.push(performance.now() - started);
    }
    return median(values);
  };
  const nothing = time(["noop"]);
  const locked = time(["cold", "ffi", fresh("cold.lock")]);
  cold.push({ runtime, nothingMs: nothing, firstLockMs: locked, extraMs: locked - nothing });
}

// ---- 6. CLI start -------------------------------------------------------------
// The `filelock` command from process start to its command having run (here
// `true`), against the same runtime doing nothing, interleaved round by round.

const cliStarts = [];
{
  const lock = fresh("cli.lock");
  const variants = [
    ["node -e 0", ["node", "-e", "0"]],
    ["filelock (node, the npm bin)", ["node", join(root, "bin", "filelock.mjs"), lock, "true"]],
    ["bun -e 0", [bin("bun"), "-e", "0"]],
    ["filelock (bunx --bun)", [bin("bun"), join(root, "bin", "filelock.mjs"), lock, "true"]],
    ["deno eval 0", [bin("deno"), "eval", "0"]],
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

// ---- report --------------------------------------------------------------------

const f = (x, digits = 2) => (typeof x !== "number" || Number.isNaN(x) ? "—" : x.toFixed(digits));
const cycleOf = (name, mode = "sync") => cycles.find((c) => c.name === name && c.mode === mode);
const proper = cycleOf("proper-lockfile (npm)");
const targets = [];
const target = (what, value, limit, met) => targets.push({ what, value, limit, met });
for (
  const [name, limit] of [["deno-ffi", 1.15], ["bun-ffi", 1.15], ["node-koffi", 1.25], [
    "deno-native",
    2.0,
  ]]
) {
  const c = cycleOf(name);
  if (c?.ratio !== undefined) {
    target(`uncontended ${name} / C`, `${f(c.ratio)}x`, `<= ${limit}x`, c.ratio <= limit);
  }
}
for (const name of ["deno-ffi", "deno-native", "bun-ffi", "node-koffi"]) {
  const c = cycleOf(name);
  if (c && proper) {
    target(
      `${name} faster than proper-lockfile`,
      `${f(proper.ns / c.ns, 0)}x`,
      ">= 30x",
      proper.ns / c.ns >= 30,
    );
  }
}
for (const row of contended.filter((r) => r.procs >= 2 && r.c)) {
  for (const runtime of Object.keys(RUNTIMES)) {
    target(
      `contended ${runtime}, ${row.procs} processes / C`,
      `${f(row[runtime] / row.c)}x`,
      ">= 0.8x",
      row[runtime] / row.c >= 0.8,
    );
  }
}
for (const h of handoff.filter((h) => h.waiters === 4)) {
  target(`hand-off p50 ${h.runtime}, 4 waiters`, `${f(h.p50)} ms`, "<= 1 ms", h.p50 <= 1);
  target(`hand-off p99 ${h.runtime}, 4 waiters`, `${f(h.p99)} ms`, "<= 10 ms", h.p99 <= 10);
}
{
  const nodeNothing = cliStarts.find((c) => c.name === "node -e 0")?.ms;
  const nodeCli = cliStarts.find((c) => c.name.startsWith("filelock (node"))?.ms;
  if (nodeNothing && nodeCli) {
    target(
      "filelock start (node) / node -e 0",
      `${f(nodeCli / nodeNothing)}x`,
      "<= 3x",
      nodeCli / nodeNothing <= 3,
    );
  }
}
for (const w of waitingCpu) {
  target(`waiting CPU ${w.runtime}`, `${f(w.percentOfCore, 1)}%`, "<= 2%", w.percentOfCore <= 2);
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

console.log(
  "\nUncontended cycle (exclusive acquire + release, lock file kept), median ns per cycle",
);
console.log("| backend | mode | ns | × C |\n| --- | --- | ---: | ---: |");
for (const c of cycles) console.log(`| ${c.name} | ${c.mode} | ${f(c.ns, 0)} | ${f(c.ratio)} |`);
console.log("\nContended throughput (ops/s; read + write + release per op; counts exact)");
console.log(
  `| processes | C | ${Object.keys(RUNTIMES).join(" | ")} |\n| ---: | ---: | ---: | ---: | ---: |`,
);
for (const r of contended) {
  console.log(
    `| ${r.procs} | ${f(r.c, 0)} | ${Object.keys(RUNTIMES).map((k) => f(r[k], 0)).join(" | ")} |`,
  );
}
console.log("\nHand-off latency (release -> next holder), ms");
console.log("| runtime | waiters | p50 | p99 | samples |\n| --- | ---: | ---: | ---: | ---: |");
for (const h of handoff) {
  console.log(`| ${h.runtime} | ${h.waiters} | ${f(h.p50)} | ${f(h.p99)} | ${h.samples} |`);
}
console.log("\nWaiting CPU (% of one core while blocked on a held lock)");
for (const w of waitingCpu) console.log(`| ${w.runtime} | ${f(w.percentOfCore, 1)}% |`);
console.log("\nScale (one process holding N distinct locks)");
console.log(
  "| runtime | locks | ns per lock | heap bytes per lock |\n| --- | ---: | ---: | ---: |",
);
for (const s of scale) {
  console.log(`| ${s.runtime} | ${s.count} | ${f(s.ns, 0)} | ${f(s.heapPerLock, 0)} |`);
}
console.log("\nCold start (process start -> first lock held), ms");
console.log("| runtime | doing nothing | first lock held | extra |\n| --- | ---: | ---: | ---: |");
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
    targets,
    skipped,
  };
  writeFileSync(join(root, "bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, "bench", "results.svg"), chart(cycles));
  console.log("\nwrote bench/results.json and bench/results.svg");
}

/** A horizontal bar chart of the uncontended cycle, log scale, as SVG. */
function chart(rows) {
  const width = 760, barLeft = 330, rowHeight = 22, top = 40;
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
