// `npm run build` (and `prepack`): what npm users load, built from the
// TypeScript sources that Deno and JSR use as they are.
//   dist/<entry>.js     ESM, one shared chunk, so that the entries share state
//   dist/<entry>.cjs    CommonJS, one file per entry
//   dist/<entry>.d.ts   the entry's types in one file (and a .d.cts copy for require)
// Bindings that exist in one runtime only (bun:ffi, koffi) stay outside and
// are loaded on first use.
import { spawnSync } from "node:child_process";
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
/** The package's entry points: export name -> source. */
export const ENTRIES = { mod: "mod.ts", cli: "src/cli/main.ts", postgres: "src/postgres/mod.ts" };
const external = ["koffi", "bun:ffi"];
const common = {
  bundle: true,
  platform: "node",
  target: "es2022",
  external,
  logLevel: "warning",
  legalComments: "none",
};

rmSync(dist, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: Object.fromEntries(
    Object.entries(ENTRIES).map(([name, source]) => [name, join(root, source)]),
  ),
  format: "esm",
  splitting: true,
  outdir: dist,
  chunkNames: "shared-[hash]",
});
/**
 * CommonJS has no shared chunks: the postgres entry takes the error classes
 * from mod.cjs, so that `instanceof LockError` holds across the two.
 */
const sharedErrors = {
  name: "shared-errors",
  setup(build) {
    build.onResolve(
      { filter: /\/errors\.ts$/ },
      (args) =>
        args.resolveDir.endsWith(join("src", "postgres")) && args.path === "../errors.ts"
          ? { path: "./mod.cjs", external: true }
          : undefined,
    );
  },
};

for (const [name, source] of Object.entries(ENTRIES)) {
  await build({
    ...common,
    entryPoints: [join(root, source)],
    format: "cjs",
    outfile: join(dist, `${name}.cjs`),
    plugins: name === "postgres" ? [sharedErrors] : [],
    logOverride: { "empty-import-meta": "silent" },
    // CommonJS has no import.meta: give createRequire this file's URL instead.
    define: { "import.meta.url": "__filelockModuleUrl" },
    banner: {
      js: 'const __filelockModuleUrl = require("node:url").pathToFileURL(__filename).href;',
    },
  });
  const types = spawnSync(
    join(root, "node_modules", ".bin", "dts-bundle-generator"),
    [
      "--silent",
      "--no-check",
      "--project",
      join(root, "scripts", "tsconfig.build.json"),
      "--export-referenced-types=false",
      "-o",
      join(dist, `${name}.d.ts`),
      join(root, source),
    ],
    { stdio: "inherit" },
  );
  if (types.status !== 0) throw new Error(`dts-bundle-generator failed for ${source}`);
  copyFileSync(join(dist, `${name}.d.ts`), join(dist, `${name}.d.cts`));
}
