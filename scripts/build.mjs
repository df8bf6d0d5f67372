// `npm run build` (and `prepack`): what npm users load, built from the
// TypeScript sources that Deno and JSR use as they are.
//   dist/<entry>.js       ESM; what the entries share is in chunks
//                         (dist/shared-<hash>.js), so that they share state
//   dist/<entry>.cjs      CommonJS, made from the ESM files one for one: the
//                         same chunks (dist/shared-<hash>.cjs), so that a
//                         process that requires several entries has one core
//                         (one warning, one table of held locks, one LockError)
//   dist/<entry>.d.ts     the entry's types in one file (and a .d.cts copy for require)
// Bindings that exist in one runtime only (bun:ffi, koffi) stay outside and
// are loaded on first use.
//
// The files are built in a directory of their own and then renamed into
// dist/ one by one (and stale ones removed), so that a process that uses
// dist/ meanwhile (the test suite packs the package while other stages run
// the built CLI) never finds a file missing or half written.
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
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

mkdirSync(join(root, ".cache"), { recursive: true });
const out = mkdtempSync(join(root, ".cache", "dist-"));
try {
  // The types are made synchronously, while esbuild works; a failure of either rejects.
  await Promise.all([javascript(), Promise.resolve().then(types)]);
  mkdirSync(dist, { recursive: true });
  const built = new Set(readdirSync(out));
  for (const name of built) renameSync(join(out, name), join(dist, name));
  for (const name of readdirSync(dist)) {
    if (!built.has(name)) rmSync(join(dist, name), { recursive: true, force: true });
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}

async function javascript() {
  const esm = await build({
    ...common,
    entryPoints: Object.fromEntries(
      Object.entries(ENTRIES).map(([name, source]) => [name, join(root, source)]),
    ),
    format: "esm",
    splitting: true,
    outdir: out,
    chunkNames: "shared-[hash]",
    metafile: true,
  });
  // CommonJS has no chunks of its own: each ESM file (entry or chunk) becomes
  // a .cjs file that requires the .cjs of the chunks it imports.
  const files = Object.keys(esm.metafile.outputs).map((path) => join(root, path));
  await build({
    ...common,
    entryPoints: files,
    format: "cjs",
    absWorkingDir: out, // the files' comments name them as they are in dist/
    outdir: out,
    outbase: out,
    outExtension: { ".js": ".cjs" },
    plugins: [{
      name: "chunks-as-cjs",
      setup(build) {
        build.onResolve({ filter: /^\.\/shared-[\w-]+\.js$/ }, (args) => ({
          path: args.path.replace(/\.js$/, ".cjs"),
          external: true,
        }));
      },
    }],
    logOverride: { "empty-import-meta": "silent" },
    // CommonJS has no import.meta: give createRequire this file's URL instead.
    define: { "import.meta.url": "__filelockModuleUrl" },
    banner: {
      js: 'const __filelockModuleUrl = require("node:url").pathToFileURL(__filename).href;',
    },
  });
}

/** Every entry's declarations, from one TypeScript program. */
function types() {
  const require = createRequire(import.meta.url);
  const { generateDtsBundle } = require("dts-bundle-generator");
  const names = Object.keys(ENTRIES);
  const bundles = generateDtsBundle(
    names.map((name) => ({
      filePath: join(root, ENTRIES[name]),
      output: { exportReferencedTypes: false },
    })),
    { preferredConfigPath: join(root, "scripts", "tsconfig.build.json") },
  );
  names.forEach((name, i) => {
    writeFileSync(join(out, `${name}.d.ts`), bundles[i]);
    copyFileSync(join(out, `${name}.d.ts`), join(out, `${name}.d.cts`));
  });
}
