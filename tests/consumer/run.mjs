// The consumer stage of `npm test`: packs the package as npm would publish it,
// installs the tarball into a fresh project with production dependencies
// only, and uses it as users do — Node ESM (the README's examples, unchanged),
// Node CommonJS, TypeScript under strict settings, Bun and Deno importing it
// by name, and the installed `filelock` bin. Prints "ok - ..." / "not ok -
// ..." per check and "# consumer: N passed, N failed, N skipped" last.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);
const work = mkdtempSync(join(tmpdir(), "filelock-consumer-"));
const app = join(work, "app");
const counts = { passed: 0, failed: 0, skipped: 0 };

function run(argv, options = {}) {
  const result = spawnSync(argv[0], argv.slice(1), {
    cwd: app,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    ...options,
  });
  return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

function check(name, fn) {
  try {
    fn();
    counts.passed++;
    console.log(`ok - ${name}`);
  } catch (error) {
    counts.failed++;
    console.log(`not ok - ${name}: ${String(error?.message ?? error).split("\n").join("\n  ")}`);
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

function ran(result, what) {
  expect(result.code === 0, `${what} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** The first ```ts block after `heading` in the README: the example as users copy it. */
function readmeExample(heading) {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const at = readme.indexOf(heading);
  expect(at >= 0, `README has no '${heading}'`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(block, `no ts block after '${heading}'`);
  return block[1];
}

try {
  // 1. The tarball npm would publish (prepack builds it).
  let tarball;
  check("npm pack builds and packs only what users need", () => {
    const packed = spawnSync("npm", ["pack", "--json", "--pack-destination", work], {
      cwd: root,
      encoding: "utf8",
    });
    expect(packed.status === 0, packed.stderr);
    const info = JSON.parse(packed.stdout)[0];
    tarball = join(work, info.filename);
    const names = info.files.map((f) => f.path);
    for (
      const needed of [
        "dist/mod.js",
        "dist/mod.cjs",
        "dist/mod.d.ts",
        "dist/mod.d.cts",
        "dist/cli.js",
        "bin/filelock.mjs",
        "README.md",
        "LICENSE",
        "package.json",
      ]
    ) {
      expect(names.includes(needed), `missing ${needed}`);
    }
    const stray = names.filter((n) => /^(tests|bench|\.ci|src|ffi|scripts|docs)\//.test(n));
    expect(stray.length === 0, `ships ${stray.join(", ")}`);
  });

  // 2. A fresh project, production dependencies only.
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module" }),
  );
  check("the tarball installs with --omit=dev into a fresh project", () => {
    ran(run(["npm", "install", "--omit=dev", "--no-audit", "--no-fund", tarball]), "npm install");
    const installed = readdirSync(join(app, "node_modules"));
    for (const dev of ["tsx", "esbuild", "deno", "bun", "typescript"]) {
      expect(!installed.includes(dev), `a devDependency came along: ${dev}`);
    }
  });

  // 3. Node, ESM: the README's examples, unchanged.
  const nodeExample = readmeExample("Node, synchronous code:");
  const quickStart = readmeExample("From code:");
  writeFileSync(join(app, "node-example.mjs"), nodeExample);
  writeFileSync(join(app, "quick-start.mjs"), quickStart);
  writeFileSync(
    join(app, "esm.mjs"),
    `import { probe, tryAcquire, withLock, LockError } from "@lockkit/filelock";
import { main } from "@lockkit/filelock/cli";
import { postgresLocks } from "@lockkit/filelock/postgres";
// One LockError class across the entry points (the name is checked before any query).
const locks = postgresLocks({ begin() {}, unsafe() {} });
const refused = await locks.tryAcquire("").catch((e) => e);
if (!(refused instanceof LockError) || refused.code !== "EINVAL") throw new Error("postgres: " + refused);
const lock = tryAcquire("./esm.lock");
if (lock === null || tryAcquire("./esm.lock") !== null) throw new Error("no exclusion");
lock.releaseSync();
if (await withLock("./esm.lock", () => 42) !== 42) throw new Error("withLock");
if (typeof main !== "function" || !(new LockError({ code: "EINVAL", path: "" }) instanceof Error)) throw new Error("exports");
console.log(probe().backend);
`,
  );
  check("Node (ESM) runs the README's Node example and quick start unchanged", () => {
    ran(run(["node", "node-example.mjs"]), "node node-example.mjs");
    ran(run(["node", "quick-start.mjs"]), "node quick-start.mjs");
    const esm = ran(run(["node", "esm.mjs"]), "node esm.mjs");
    expect(esm.stdout.trim() === "node-koffi", `backend: ${esm.stdout}`);
  });

  // 4. Node, CommonJS.
  writeFileSync(
    join(app, "cjs.cjs"),
    `const { tryAcquire, probe, LockError } = require("@lockkit/filelock");
const { main } = require("@lockkit/filelock/cli");
const { postgresLocks } = require("@lockkit/filelock/postgres");
postgresLocks({ begin() {}, unsafe() {} }).tryAcquire("").catch((e) => {
  if (!(e instanceof LockError)) { console.error("postgres: not the same LockError"); process.exit(3); }
});
const lock = tryAcquire("./cjs.lock");
if (lock === null) throw new Error("not taken");
lock.releaseSync();
if (typeof main !== "function") throw new Error("cli");
console.log(probe().backend);
`,
  );
  check("Node (CommonJS) requires every entry point", () => {
    const cjs = ran(run(["node", "cjs.cjs"]), "node cjs.cjs");
    expect(cjs.stdout.trim() === "node-koffi", `backend: ${cjs.stdout}`);
  });

  // 5. TypeScript, as strict as a consumer may be, with the library's declarations checked.
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "es2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        lib: ["es2022", "esnext.disposable"],
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        noEmit: true,
        typeRoots: [join(root, "node_modules", "@types")],
        types: ["node"],
      },
      include: ["*.ts", "*.cts"],
    }),
  );
  writeFileSync(
    join(app, "typed.ts"),
    `import { acquire, inspect, type Lock, LockError, type LockOptions, LockTimeoutError, probe, tryAcquire, withLock } from "@lockkit/filelock";
import { type CliOutput, main } from "@lockkit/filelock/cli";
import { type PostgresLock, postgresLocks } from "@lockkit/filelock/postgres";
const options: LockOptions = { timeout: 1000, shared: false, backend: "auto", removeOnRelease: false };
const lock: Lock = await acquire("./typed.lock", options);
const backend: "deno-ffi" | "bun-ffi" | "node-koffi" | "deno-native" | "pidfile" = lock.backend;
await lock.release();
{
  using held = tryAcquire("./typed.lock");
  void held?.path;
}
const n: number = await withLock("./typed.lock", (l) => l.shared ? 1 : 2);
const status = inspect("./typed.lock");
const holder = status.holders[0];
const pid: number | undefined = holder?.pid;
try { tryAcquire(""); } catch (e) { if (e instanceof LockTimeoutError || e instanceof LockError) void e.code; }
const out: CliOutput = { stdout: () => {}, stderr: () => {}, stderrIsTerminal: false };
const code: number = await main(["--version"], out);
// @ts-expect-error an unknown backend is a type error
void tryAcquire("./x.lock", { backend: "magic" });
declare const sql: Parameters<typeof postgresLocks>[0];
async function distributed(): Promise<bigint> {
  const pg: PostgresLock = await postgresLocks(sql, { leaseMs: 30_000 }).acquire("job", { timeout: 100 });
  // @ts-expect-error a network round trip has no synchronous release
  pg.releaseSync();
  await pg.release();
  return pg.fence;
}
void distributed;
void [backend, n, pid, code, probe().reason];
`,
  );
  writeFileSync(
    join(app, "typed-cjs.cts"),
    `import filelock = require("@lockkit/filelock");
const lock = filelock.tryAcquire("./typed.lock");
lock?.releaseSync();
`,
  );
  check(
    "TypeScript (strict, noUncheckedIndexedAccess, exactOptionalPropertyTypes, nodenext, skipLibCheck false) type-checks a consumer",
    () => {
      ran(run([bin("tsc"), "-p", "tsconfig.json"]), "tsc --noEmit");
    },
  );

  // 6. Bun and Deno import the package by name from node_modules.
  check("Bun imports the package by name and runs the README example", () => {
    ran(run([bin("bun"), "node-example.mjs"]), "bun node-example.mjs");
    const esm = ran(run([bin("bun"), "esm.mjs"]), "bun esm.mjs");
    expect(esm.stdout.trim() === "bun-ffi", `backend: ${esm.stdout}`);
  });
  check("Deno imports the package by name from node_modules", () => {
    const esm = ran(run([bin("deno"), "run", "-A", "esm.mjs"]), "deno run esm.mjs");
    expect(esm.stdout.trim() === "deno-ffi", `backend: ${esm.stdout}`);
  });

  // 7. The installed bin, without tsx or any devDependency.
  check(
    "the installed filelock bin: --version, --probe, -n (free and held), under Node and bunx --bun",
    () => {
      const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
      const v = ran(
        run(["npx", "--no-install", "filelock", "--version"]),
        "npx filelock --version",
      );
      expect(v.stdout === `filelock ${version}\n`, v.stdout);
      const probed = JSON.parse(
        ran(run(["npx", "--no-install", "filelock", "--probe"]), "--probe").stdout,
      );
      expect(probed.backend === "node-koffi", JSON.stringify(probed));
      ran(run(["npx", "--no-install", "filelock", "-n", "bin.lock", "true"]), "filelock -n (free)");
      const holder = spawn("flock", [join(app, "bin.lock"), "sleep", "5"], { stdio: "ignore" });
      try {
        spawnSync("sleep", ["0.3"]);
        const held = run(["npx", "--no-install", "filelock", "-n", "bin.lock", "true"]);
        expect(held.code === 1, `-n on a held lock exited ${held.code}: ${held.stderr}`);
      } finally {
        holder.kill("SIGKILL");
      }
      const bunx = ran(
        run([bin("bun"), "x", "--bun", "filelock", "--version"]),
        "bunx --bun filelock",
      );
      expect(bunx.stdout === `filelock ${version}\n`, bunx.stdout);
    },
  );

  // 8. Never silently degraded: without koffi, Node uses the pidfile mode and says so, once.
  writeFileSync(
    join(app, "degraded.mjs"),
    `import { tryAcquire } from "@lockkit/filelock";
for (const name of ["a", "b"]) {
  const lock = tryAcquire("./degraded-" + name + ".lock");
  console.log(lock?.backend);
  lock?.releaseSync();
}
`,
  );
  check(
    "without koffi, the pidfile fallback is said once on stderr, by the library and the bin",
    () => {
      rmSync(join(app, "node_modules", "koffi"), { recursive: true, force: true });
      const degraded = ran(run(["node", "degraded.mjs"]), "node degraded.mjs");
      expect(degraded.stdout === "pidfile\npidfile\n", degraded.stdout);
      const warnings = degraded.stderr.split("\n").filter((l) =>
        l.startsWith("filelock: warning:")
      );
      expect(warnings.length === 1, `one warning, got: ${degraded.stderr}`);
      expect(
        /pidfile backend, which flock\(1\) .* do not see: koffi could not be loaded/.test(
          warnings[0],
        ),
        warnings[0],
      );
      const knowingly = ran(
        run(["node", "degraded.mjs"], { env: { FILELOCK_BACKEND: "pidfile" } }),
        "FILELOCK_BACKEND=pidfile node degraded.mjs",
      );
      expect(knowingly.stderr === "", `chosen knowingly, no warning: ${knowingly.stderr}`);
      const cli = ran(
        run(["npx", "--no-install", "filelock", "-n", "cli.lock", "true"]),
        "filelock",
      );
      expect(
        /^filelock: warning: using the pidfile backend/m.test(cli.stderr),
        `bin: ${cli.stderr}`,
      );
    },
  );

  // 9. One core per process in CommonJS too: the entries require the same
  // chunks as the ESM build imports, so the library and the CLI used from one
  // process warn once, share their held locks and their LockError.
  writeFileSync(
    join(app, "one-core.cjs"),
    `const filelock = require("@lockkit/filelock");
const { main } = require("@lockkit/filelock/cli");
const postgres = require("@lockkit/filelock/postgres");
const quiet = { stdout() {}, stderr() {}, stderrIsTerminal: false };
(async () => {
  const held = filelock.tryAcquire("./one-core.lock");
  if (held?.backend !== "pidfile") throw new Error("expected the pidfile fallback, got " + held?.backend);
  const whileHeld = await main(["-n", "./one-core.lock", "true"], quiet);
  held.releaseSync();
  const afterwards = await main(["-n", "./one-core.lock", "true"], quiet);
  const refused = await postgres.postgresLocks({ begin() {}, unsafe() {} }).tryAcquire("").catch((e) => e);
  let modError;
  try { filelock.tryAcquire(""); } catch (e) { modError = e; }
  console.log(JSON.stringify({
    whileHeld,
    afterwards,
    sameClass: postgres.LockError === filelock.LockError,
    postgresErrorIsLockError: refused instanceof filelock.LockError,
    modErrorIsPostgresLockError: modError instanceof postgres.LockError,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
`,
  );
  check(
    "CommonJS: the entry points share one core (one fallback warning for the library and the CLI, their held locks, one LockError)",
    () => {
      const dist = join(app, "node_modules", "@lockkit", "filelock", "dist");
      for (const extension of [".js", ".cjs"]) {
        const copies = readdirSync(dist).filter((name) =>
          name.endsWith(extension) &&
          readFileSync(join(dist, name), "utf8").includes("filelock: warning: ")
        );
        expect(copies.length === 1, `the warning is in ${copies.join(", ")} (*${extension})`);
      }
      const result = ran(run(["node", "one-core.cjs"]), "node one-core.cjs");
      const warnings = result.stderr.split("\n").filter((l) => l.startsWith("filelock: warning:"));
      expect(warnings.length === 1, `one warning, got ${warnings.length}: ${result.stderr}`);
      const seen = JSON.parse(result.stdout);
      expect(
        JSON.stringify(seen) === JSON.stringify({
          whileHeld: 1,
          afterwards: 0,
          sameClass: true,
          postgresErrorIsLockError: true,
          modErrorIsPostgresLockError: true,
        }),
        result.stdout,
      );
    },
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(
  `# consumer: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
);
process.exit(counts.failed === 0 ? 0 : 1);
