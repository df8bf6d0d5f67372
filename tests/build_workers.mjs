// Bundles the test workers (tests/workers/*.ts) for Node into
// .cache/workers/*.mjs, so that a Node worker starts in tens of milliseconds
// instead of the most of a second that tsx takes. tests/helpers.ts uses a
// bundle only while it is newer than every source it was built from.
import { mkdirSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const workers = join(root, "tests", "workers");
const out = join(root, ".cache", "workers");

/** Builds every worker bundle; each lands under its final name at once (rename). */
export async function buildWorkers() {
  mkdirSync(out, { recursive: true });
  const scripts = readdirSync(workers).filter((f) => f.endsWith(".ts") && f !== "args.ts");
  await Promise.all(scripts.map(async (script) => {
    const name = script.replace(/\.ts$/, ".mjs");
    const temporary = join(out, `.${process.pid}.${name}`);
    await build({
      entryPoints: [join(workers, script)],
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      external: ["koffi", "bun:ffi"],
      outfile: temporary,
      logLevel: "warning",
      logOverride: { "empty-import-meta": "silent" },
    });
    renameSync(temporary, join(out, name));
  }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildWorkers();
