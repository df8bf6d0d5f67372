#!/usr/bin/env node
// The `filelock` command for npm's and bun's bin links. Deno and Bun run the
// TypeScript source as it is; Node 20 needs tsx to load it.
import process from "node:process";

if (globalThis.Deno === undefined && globalThis.Bun === undefined) {
  const { register } = await import("tsx/esm/api");
  register();
}
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
