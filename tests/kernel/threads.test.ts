import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { runtimeName, tempDir, workers } from "../helpers.ts";

function ask(worker: Worker, message?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
    if (message !== undefined) worker.postMessage(message);
  });
}

test(`${runtimeName}: locks taken in two worker threads exclude each other`, async () => {
  const dir = tempDir();
  const path = join(dir, "thread.lock");
  const script = join(workers, runtimeName === "node" ? "thread_node.mjs" : "thread.ts");
  const a = new Worker(script, { workerData: { path } });
  const b = new Worker(script, { workerData: { path } });
  try {
    await Promise.all([ask(a), ask(b)]);
    assert.match(await ask(a, "try"), /^held:/);
    assert.equal(await ask(b, "try"), "busy");
    assert.equal(await ask(a, "release"), "released");
    assert.match(await ask(b, "try"), /^held:/);
    assert.equal(await ask(a, "try"), "busy");
    await ask(b, "release");
  } finally {
    await a.terminate();
    await b.terminate();
    rmSync(dir, { recursive: true, force: true });
  }
});
