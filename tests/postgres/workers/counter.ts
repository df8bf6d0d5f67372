// Increments the counter row of the test database, `loops` times in parallel
// (each loop on its own connections), `iterations` times each: read, pause,
// write, under the lock `name` unless told not to; under the lock it also logs
// the value it wrote with its fence.
// argv: url name iterations lock|nolock client=porsager|bunsql loops=<n> [go=<file>]
import { existsSync } from "node:fs";
import { postgresLocks } from "../../../src/postgres/mod.ts";
import { args as argv } from "../../workers/args.ts";
import { type ClientKind, connect } from "../clients.ts";

const [url, name, iterationsText, mode, ...flags] = argv;
const option = (key: string): string | undefined =>
  flags.find((flag) => flag.startsWith(`${key}=`))?.slice(key.length + 1);
const iterations = Number(iterationsText);
const loops = Number(option("loops") ?? "1");
const kind = (option("client") ?? "porsager") as ClientKind;
const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? "deno"
  : typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? "bun"
  : "node";

const client = connect(kind, url, loops * 2 + 1);
const locks = postgresLocks(client.sql, { leaseMs: 10_000 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function increment(fence: bigint | undefined): Promise<void> {
  const [row] = await client.query("SELECT v FROM counter WHERE id = 1");
  await sleep(2); // widen the read-modify-write window
  const next = String(Number(row.v) + 1);
  await client.query("UPDATE counter SET v = $1::int WHERE id = 1", [next]);
  if (fence !== undefined) {
    await client.query(
      "INSERT INTO fence_log (v, fence, writer) VALUES ($1::int, $2::bigint, $3)",
      [next, String(fence), `${runtime}/${kind}/${process.pid}`],
    );
  }
}

const go = option("go");
if (go !== undefined) {
  console.log("ready");
  while (!existsSync(go)) await sleep(1);
}

await Promise.all(
  Array.from({ length: loops }, async () => {
    for (let i = 0; i < iterations; i++) {
      if (mode === "nolock") await increment(undefined);
      else await locks.withLock(name, (lock) => increment(lock.fence), { timeout: 60_000 });
    }
  }),
);
await client.end();
