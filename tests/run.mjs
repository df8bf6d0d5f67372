// `npm test`: runs the whole suite under Deno, Bun and Node, one after the
// other, and reports each runtime and the total.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);
const files = readdirSync(join(root, "tests"), { recursive: true })
  .filter((f) => f.endsWith(".test.ts"))
  .sort()
  .map((f) => join("tests", f));

const runtimes = [
  {
    name: "deno",
    argv: [bin("deno"), "test", "-A", "--no-check", ...files],
    counts: (out) => {
      const m = /\|\s*(\d+) passed[^|]*\|\s*(\d+) failed(?:[^|]*\|\s*(\d+) ignored)?/.exec(out);
      return m && { passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) };
    },
  },
  {
    name: "bun",
    argv: [bin("bun"), "test", "--timeout", "120000", ...files.map((f) => `./${f}`)],
    counts: (out) => {
      const pass = /^\s*(\d+) pass$/m.exec(out);
      const fail = /^\s*(\d+) fail$/m.exec(out);
      const skip = /^\s*(\d+) skip$/m.exec(out);
      return pass && fail && { passed: +pass[1], failed: +fail[1], skipped: +(skip?.[1] ?? 0) };
    },
  },
  {
    name: "node",
    argv: ["node", "--import", "tsx", "--test", "--test-concurrency=1", ...files],
    counts: (out) => {
      const pass = /^# pass (\d+)$/m.exec(out);
      const fail = /^# fail (\d+)$/m.exec(out);
      const skip = /^# skipped (\d+)$/m.exec(out);
      return pass && fail && { passed: +pass[1], failed: +fail[1], skipped: +(skip?.[1] ?? 0) };
    },
  },
  {
    // Node for Windows under Wine, on the module bundled for Node (tests/windows/).
    name: "windows",
    argv: ["node", join("tests", "windows", "run.mjs")],
    counts: (out) => {
      const m = [...out.matchAll(/^# windows: (\d+) passed, (\d+) failed, (\d+) skipped$/gm)].at(
        -1,
      );
      return m && { passed: +m[1], failed: +m[2], skipped: +m[3] };
    },
  },
  {
    // A smoke run of the benchmark (tiny sizes, nothing written), so that it cannot rot.
    name: "bench",
    argv: ["node", join("bench", "run.mjs"), "--smoke"],
    counts: (out) => /^Targets$/m.test(out) ? { passed: 1, failed: 0, skipped: 0 } : null,
  },
];

const only = process.argv.slice(2);
const reports = [];
for (const runtime of runtimes) {
  if (only.length > 0 && !only.includes(runtime.name)) continue;
  console.log(`\n=== ${runtime.name}: ${runtime.argv.join(" ")}`);
  const started = Date.now();
  const result = spawnSync(runtime.argv[0], runtime.argv.slice(1), {
    cwd: root,
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  process.stdout.write(output);
  const counts = runtime.counts(output) ?? { passed: 0, failed: 0, skipped: 0 };
  // A stage that only skipped (Windows without Wine) is reported as skipped, not as passed.
  const ok = result.status === 0 && counts.failed === 0 && counts.passed + counts.skipped > 0;
  if (!ok && counts.failed === 0) counts.failed = 1; // crashed or ran nothing
  reports.push({ name: runtime.name, ok, seconds: (Date.now() - started) / 1000, ...counts });
}

console.log("\n=== summary");
for (const r of reports) {
  console.log(
    `${r.name.padEnd(7)} ${
      r.ok ? "ok    " : "FAILED"
    } ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped (${r.seconds.toFixed(1)} s)`,
  );
}
const total = reports.reduce(
  (t, r) => ({
    passed: t.passed + r.passed,
    failed: t.failed + r.failed,
    skipped: t.skipped + r.skipped,
  }),
  { passed: 0, failed: 0, skipped: 0 },
);
console.log(`total: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(reports.every((r) => r.ok) ? 0 : 1);
