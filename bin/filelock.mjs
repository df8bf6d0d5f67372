#!/usr/bin/env node
// The `filelock` command of the npm package: the built CLI, run by Node
// (`npx filelock`) or Bun (`bunx --bun filelock`). Deno runs the TypeScript
// CLI from JSR (`deno run jsr:@lockkit/filelock/cli`).
import process from "node:process";
import { main } from "../dist/cli.js";

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
