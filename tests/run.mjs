// `npm test`: builds the package, then runs every stage of the suite — the
// tests under Deno, Bun and Node, the Windows suite under Wine, the consumer
// tests of the packed npm package, a smoke run of the benchmark — and prints
// one line per stage. Details only for failures (and skips, with their
// reasons); `--verbose` prints every stage's whole output.
//
//   node tests/run.mjs [--verbose] [stage ...]      stages: deno bun node windows consumer bench
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const verbose = args.includes("--verbose");
const only = args.filter((a) => !a.startsWith("--"));
const reports = mkdtempSync(join(tmpdir(), "filelock-run-"));
const files = readdirSync(join(root, "tests"), { recursive: true })
  .filter((f) => f.endsWith(".test.ts"))
  .sort()
  .map((f) => join("tests", f));

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

const junitPath = (stage) => join(reports, `${stage}.xml`);

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
  deno: {
    argv: [bin("deno"), "test", "-A", "--no-check", `--junit-path=${junitPath("deno")}`, ...files],
    counts: () => junit(junitPath("deno")),
  },
  bun: {
    argv: [
      bin("bun"),
      "test",
      "--timeout",
      "120000",
      "--reporter=junit",
      `--reporter-outfile=${junitPath("bun")}`,
      ...files.map((f) => `./${f}`),
    ],
    counts: () => junit(junitPath("bun")),
  },
  node: {
    argv: [
      "node",
      "--import",
      "tsx",
      "--test",
      "--test-concurrency=1",
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      "--test-reporter=junit",
      `--test-reporter-destination=${junitPath("node")}`,
      ...files,
    ],
    counts: () => junit(junitPath("node")),
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

/**
 * The order: the runtime stages one after the other (their tests time real
 * processes, and the machines have two cores), each beside one lighter stage.
 */
const PLAN = [["build"], ["deno", "consumer"], ["bun", "windows"], ["node", "bench"]];

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

function print(report) {
  const { name, status, passed, failed, skipped, seconds } = report;
  const counts = name === "build" ? "" : `${passed} passed, ${failed} failed, ${skipped} skipped `;
  console.log(`${name.padEnd(9)} ${status.padEnd(7)} ${counts}(${seconds.toFixed(1)} s)`);
  for (const reason of report.skips) console.log(`          skipped: ${reason}`);
  if (status !== "FAILED") return;
  for (const failure of report.failures) {
    console.log(`          not ok: ${failure.name}`);
    const lines = failure.message.split("\n").slice(0, 30);
    for (const line of lines) console.log(`            ${line}`);
  }
  if (report.failures.length === 0 && !verbose) {
    console.log(`          exited ${report.code ?? report.signal}; the end of its output:`);
    for (const line of report.output.trimEnd().split("\n").slice(-40)) {
      console.log(`            ${line}`);
    }
  }
}

const wanted = (name) => name === "build" || only.length === 0 || only.includes(name);
const started = Date.now();
const done = [];
for (const group of PLAN) {
  const reportsOfGroup = await Promise.all(
    group.filter(wanted).map(async (name) => {
      const report = await runStage(name);
      print(report);
      return report;
    }),
  );
  done.push(...reportsOfGroup);
  if (reportsOfGroup.some((r) => r.name === "build" && r.status !== "ok")) break;
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
