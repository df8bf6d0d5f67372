// Cold start, Deno and Bun: from process start to the first lock held and released.
import { tryAcquire } from "../mod.ts";

const path = (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ?? process.argv[2];
tryAcquire(path)?.releaseSync();
