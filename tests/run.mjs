// `npm test`: builds the package, then runs every stage of the suite — the
// tests under Deno, Bun and Node, the Windows suite under Wine, the consumer
// tests of the packed npm package, a smoke run of the benchmark — and prints
// one line per stage (one per runtime). Details only for failures (and skips,
// with their reasons); `--verbose` prints every stage's whole output.
//
//   node tests/run.mjs [--verbose] [--jobs=N] [stage ...]
//     stages: deno bun node windows consumer bench, or one group of a
//     runtime's files: deno/kernel, node/systems, ... (see GROUPS)
//     --jobs=N: how many stages and groups run at once (default: cores + 1;
//     --jobs=1 runs everything one after the other)
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const verbose = args.includes("--verbose");
const jobsArg = args.find((a) => a.startsWith("--jobs="));
/**
 * Most groups wait more than they compute (about half a core each), so one
 * more than the cores keeps them busy. More at once was faster still on the
 * 2-core VM (4: 110-120 s against 130 s), but it loads the machine enough to
 * tip tests that race a fixed delay (a FUSE abort, a 250 ms poll) more often:
 * cores + 1 ran clean in the runs made.
 */
const JOBS = jobsArg ? Math.max(1, Number(jobsArg.slice(7)) || 1) : availableParallelism() + 1;
const only = args.filter((a) => !a.startsWith("--"));
const reports = mkdtempSync(join(tmpdir(), "filelock-run-"));
const files = readdirSync(join(root, "tests"), { recursive: true })
  .filter((f) => f.endsWith(".test.ts"))
  .sort()
  .map((f) => join("tests", f).replaceAll("\\", "/"));

/**
 * Each runtime's test files run in groups, one test process per group, and
 * the groups of all runtimes share the pool of running stages: most tests
 * wait (for a holder to sleep, a timeout to pass, a server, a shell script),
 * so that one runtime's waits leave room for another runtime's work. Files of
 * one group run one after the other in the group's process, as before. A
 * file that no group names is in "rest".
 */
const GROUPS = [
  { name: "kernel", match: (f) => f.startsWith("tests/kernel/") },
  { name: "pidfile", match: (f) => f.startsWith("tests/pidfile/") },
  { name: "cli", match: (f) => f.startsWith("tests/cli/") },
  {
    // What runs against a system of its own: a FUSE filesystem, a PostgreSQL
    // server per file, util-linux's flock(1) suite.
    name: "systems",
    match: (f) => /^tests\/(fuse|postgres|util-linux)\//.test(f),
  },
  { name: "rest", match: () => true },
];
/**
 * Seconds a group (in each runtime) or stage takes on the 2-core VM with the
 * others beside it: the order of a run that has no timings of its own yet
 * (see readDurations).
 */
const ESTIMATES = {
  kernel: 30,
  pidfile: 25,
  cli: 25,
  systems: 35,
  rest: 5,
  bench: 25,
  consumer: 20,
  windows: 8,
};
const RUNTIMES = ["deno", "bun", "node"];

/** The files of `group`: those it matches and no group before it does. */
function groupFiles(group) {
  const before = GROUPS.slice(0, GROUPS.indexOf(group));
  return files.filter((f) => group.match(f) && !before.some((g) => g.match(f)));
}

/** Counts and failures from a JUnit report (Deno, Bun and Node all write one). */
function junit(path) {
  if (!existsSync(path)) return undefined;
  const xml = readFileSync(path, "utf8");
  // Attributes as quoted values: Node's reporter leaves ">" unescaped inside them.
  const cases = [
    ...xml.matchAll(/<testcase((?:\s+[\w:.-]+="[^"]*")*)\s*(\/>|>([\s\S]*?)<\/testcase>)/g),
  ];
  const result = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for (const [, attributes, , body = ""] of cases) {
    const name = decode(/\bname="([^"]*)"/.exec(attributes)?.[1] ?? "?");
    if (/<failure\b/.test(body) || /\bfailure="/.test(attributes)) {
      result.failed++;
      const message = /<failure\b[^>]*>([\s\S]*?)<\/failure>/.exec(body)?.[1] ??
        /\bmessage="([^"]*)"/.exec(body)?.[1] ?? "";
      result.failures.push({ name, message: decode(message).trim() });
    } else if (/<skipped\b/.test(body)) {
      result.skipped++;
    } else {
      result.passed++;
    }
  }
  return result;
}

function decode(text) {
  return text.replaceAll("&#10;", "\n").replaceAll("&quot;", '"').replaceAll("&apos;", "'")
    .replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

/** Counts from a stage that reports "# <stage>: N passed, N failed, N skipped" itself. */
function selfReported(stage) {
  return (output) => {
    const m = [
      ...output.matchAll(
        new RegExp(`^# ${stage}: (\\d+) passed, (\\d+) failed, (\\d+) skipped$`, "gm"),
      ),
    ]
      .at(-1);
    if (!m) return undefined;
    const failures = [...output.matchAll(/^not ok - (.*)$/gm)].map((f) => ({
      name: f[1],
      message: "",
    }));
    return { passed: +m[1], failed: +m[2], skipped: +m[3], failures };
  };
}

const junitPath = (stage) => join(reports, `${stage.replaceAll("/", "-")}.xml`);

/** The command line that runs `files` in `runtime`, writing a JUnit report to `report`. */
const RUNNERS = {
  deno: (report, files) => [
    bin("deno"),
    "test",
    "-A",
    "--no-check",
    `--junit-path=${report}`,
    ...files,
  ],
  bun: (report, files) => [
    bin("bun"),
    "test",
    "--timeout",
    "120000",
    "--reporter=junit",
    `--reporter-outfile=${report}`,
    ...files.map((f) => `./${f}`),
  ],
  node: (report, files) => [
    "node",
    "--import",
    "tsx",
    "--test",
    "--test-concurrency=1",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=junit",
    `--test-reporter-destination=${report}`,
    ...files,
  ],
};

const STAGES = {
  build: {
    argv: [
      "node",
      "--input-type=module",
      "-e",
      "await import('./scripts/build.mjs'); await (await import('./tests/build_workers.mjs')).buildWorkers();",
    ],
    counts: () => ({ passed: 1, failed: 0, skipped: 0, failures: [] }),
  },
  windows: {
    argv: ["node", join("tests", "windows", "run.mjs")],
    counts: selfReported("windows"),
  },
  consumer: {
    argv: ["node", join("tests", "consumer", "run.mjs")],
    counts: selfReported("consumer"),
  },
  bench: {
    // A smoke run (tiny sizes, nothing written): the benchmark must not rot.
    argv: ["node", join("bench", "run.mjs"), "--smoke"],
    counts: (output) =>
      /^smoke run complete$/m.test(output)
        ? { passed: 1, failed: 0, skipped: 0, failures: [] }
        : undefined,
  },
};

// Each runtime's groups, as stages named "<runtime>/<group>".
for (const group of GROUPS) {
  for (const runtime of RUNTIMES) {
    const name = `${runtime}/${group.name}`;
    const files = groupFiles(group);
    if (files.length === 0) continue;
    STAGES[name] = {
      argv: RUNNERS[runtime](junitPath(name), files),
      counts: () => junit(junitPath(name)),
      runtime,
      group: group.name,
    };
  }
}

/**
 * How long each stage took last time (.cache/test-durations.json): the pool
 * starts the longest first, so that no long stage starts last. Until a run
 * has timed a stage, ESTIMATES stands in.
 */
const durationsFile = join(root, ".cache", "test-durations.json");
function readDurations() {
  try {
    return JSON.parse(readFileSync(durationsFile, "utf8"));
  } catch {
    return {};
  }
}

function runStage(name) {
  const stage = STAGES[name];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(stage.argv[0], stage.argv.slice(1), {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const take = (chunk) => {
      output += chunk;
      if (verbose) {
        for (const line of String(chunk).split("\n")) {
          if (line) process.stdout.write(`[${name}] ${line}\n`);
        }
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code, signal) => {
      const counts = stage.counts(output) ?? { passed: 0, failed: 0, skipped: 0, failures: [] };
      const skips = [...new Set([...output.matchAll(/^SKIP (.*)$/gm)].map((m) => m[1]))];
      let status = "ok";
      if (code !== 0 || counts.failed > 0) status = "FAILED";
      else if (counts.passed === 0 && counts.skipped > 0) status = "SKIPPED";
      else if (counts.passed === 0) status = "FAILED"; // ran nothing
      resolve({
        name,
        status,
        code,
        signal,
        output,
        skips,
        seconds: (Date.now() - started) / 1000,
        ...counts,
      });
    });
  });
}

/** One runtime's report from its groups': the counts added up, each group's time. */
function mergeGroups(runtime, reports) {
  const groups = [...reports].sort((a, b) =>
    GROUPS.findIndex((g) => g.name === STAGES[a.name].group) -
    GROUPS.findIndex((g) => g.name === STAGES[b.name].group)
  );
  const sum = (key) => groups.reduce((n, r) => n + r[key], 0);
  const merged = {
    name: runtime,
    passed: sum("passed"),
    failed: sum("failed"),
    skipped: sum("skipped"),
    failures: groups.flatMap((r) => r.failures),
    skips: [...new Set(groups.flatMap((r) => r.skips))],
    groups,
  };
  let status = "ok";
  if (groups.some((r) => r.status === "FAILED")) status = "FAILED";
  else if (merged.passed === 0 && merged.skipped > 0) status = "SKIPPED";
  else if (merged.passed === 0) status = "FAILED"; // ran nothing
  return { ...merged, status };
}

function print(report) {
  const { name, status, passed, failed, skipped } = report;
  const counts = name === "build" ? "" : `${passed} passed, ${failed} failed, ${skipped} skipped `;
  const time = report.groups
    ? report.groups.map((g) => `${STAGES[g.name].group} ${g.seconds.toFixed(1)} s`).join(", ")
    : `${report.seconds.toFixed(1)} s`;
  console.log(`${name.padEnd(9)} ${status.padEnd(7)} ${counts}(${time})`);
  for (const reason of report.skips) console.log(`          skipped: ${reason}`);
  if (status !== "FAILED") return;
  for (const failure of report.failures) {
    console.log(`          not ok: ${failure.name}`);
    const lines = failure.message.split("\n").slice(0, 30);
    for (const line of lines) console.log(`            ${line}`);
  }
  if (verbose) return;
  // A stage (or group) that failed without naming a failed test: its last words.
  for (const part of report.groups ?? [report]) {
    if (part.status !== "FAILED" || part.failures.length > 0) continue;
    console.log(
      `          ${part.name} exited ${part.code ?? part.signal}; the end of its output:`,
    );
    for (const line of part.output.trimEnd().split("\n").slice(-40)) {
      console.log(`            ${line}`);
    }
  }
}

const wanted = (name) =>
  only.length === 0 || only.includes(name) || only.includes(STAGES[name].runtime);
const started = Date.now();
const done = [];
const build = await runStage("build");
print(build);
done.push(build);

if (build.status === "ok") {
  const durations = readDurations();
  const names = Object.keys(STAGES).filter((name) => name !== "build" && wanted(name));
  const seconds = (name) => durations[name] ?? ESTIMATES[STAGES[name].group ?? name] ?? Infinity;
  const order = names
    .map((name, index) => ({ name, index, seconds: seconds(name) }))
    .sort((a, b) => b.seconds - a.seconds || a.index - b.index)
    .map((s) => s.name);
  /** Groups of each runtime still running or waiting, and the reports of those done. */
  const pending = new Map();
  for (const name of names) {
    const runtime = STAGES[name].runtime;
    if (runtime === undefined) continue;
    pending.set(runtime, [...(pending.get(runtime) ?? []), name]);
  }
  const groupReports = new Map();
  const finished = (report) => {
    durations[report.name] = Math.round(report.seconds * 10) / 10;
    const runtime = STAGES[report.name].runtime;
    if (runtime === undefined) {
      print(report);
      done.push(report);
      return;
    }
    groupReports.set(runtime, [...(groupReports.get(runtime) ?? []), report]);
    if (groupReports.get(runtime).length < pending.get(runtime).length) return;
    const merged = mergeGroups(runtime, groupReports.get(runtime));
    print(merged);
    done.push(merged);
  };
  // The pool: up to JOBS stages at once, the longest first.
  await new Promise((resolve) => {
    let running = 0;
    const next = () => {
      while (running < JOBS && order.length > 0) {
        const name = order.shift();
        running++;
        runStage(name).then((report) => {
          running--;
          finished(report);
          next();
        });
      }
      if (running === 0 && order.length === 0) resolve();
    };
    next();
  });
  try {
    mkdirSync(join(root, ".cache"), { recursive: true });
    writeFileSync(durationsFile, `${JSON.stringify(durations, null, 2)}\n`);
  } catch {
    // Only an ordering hint.
  }
}
rmSync(reports, { recursive: true, force: true });

const total = done.filter((r) => r.name !== "build").reduce(
  (t, r) => ({
    passed: t.passed + r.passed,
    failed: t.failed + r.failed,
    skipped: t.skipped + r.skipped,
  }),
  { passed: 0, failed: 0, skipped: 0 },
);
const ok = done.every((r) => r.status !== "FAILED");
console.log(
  `total: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped in ${
    ((Date.now() - started) / 1000).toFixed(0)
  } s${ok ? "" : " — FAILED"}`,
);
process.exit(ok ? 0 : 1);
