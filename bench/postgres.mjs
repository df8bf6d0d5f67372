// `node bench/postgres.mjs`: the cost of a PostgreSQL lock, against the
// cheapest statement on the same connection. Starts a throwaway server on
// 127.0.0.1 (as the tests do), opens a pool of ONE connection of the
// `postgres` npm package, and measures, in interleaved rounds, an uncontended
// exclusive `acquire` + `release` and a bare `SELECT 1`; prints the medians
// and their ratio. `--smoke` runs tiny sizes. Not part of `npm run bench`
// (it needs PostgreSQL's server binaries, and takes about ten seconds).
import process from "node:process";

const { register } = await import("tsx/esm/api");
register();
const { default: postgres } = await import("postgres");
const { postgresLocks } = await import("../src/postgres/mod.ts");
const { startPostgres } = await import("../tests/postgres/server.ts");

const smoke = process.argv.includes("--smoke");
const ROUNDS = smoke ? 2 : 7;
const N = smoke ? 20 : 300;

const server = await startPostgres();
if ("reason" in server) {
  console.log(`SKIP postgres bench: ${server.reason}`);
  process.exit(0);
}

const sql = postgres(server.url, { max: 1, onnotice: () => {} });
const locks = postgresLocks(sql);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeLoop(fn) {
  const started = performance.now();
  for (let i = 0; i < N; i++) await fn();
  return ((performance.now() - started) / N) * 1000; // µs per operation
}

const select1 = () => sql.unsafe("SELECT 1");
const cycle = async () => {
  const lock = await locks.acquire("bench");
  await lock.release();
};

try {
  // Warm-up: the fence table, the connection, the JIT.
  for (let i = 0; i < 50; i++) {
    await select1();
    await cycle();
  }
  const lockTimes = [];
  const selectTimes = [];
  for (let round = 0; round < ROUNDS; round++) {
    selectTimes.push(await timeLoop(select1));
    lockTimes.push(await timeLoop(cycle));
  }
  const lock = median(lockTimes);
  const select = median(selectTimes);
  const [{ version }] = await sql.unsafe("SELECT current_setting('server_version') AS version");
  console.log(
    `PostgreSQL ${version} on 127.0.0.1, one connection of the postgres npm package, Node ${process.version}; ` +
      `median of ${ROUNDS} interleaved rounds of ${N}`,
  );
  const rows = [
    ["`SELECT 1`", select, 1],
    ["`acquire` + `release` (exclusive, uncontended)", lock, lock / select],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log("");
  console.log(`| ${"operation (same connection)".padEnd(width)} |    µs | × SELECT 1 |`);
  console.log(`| ${"-".repeat(width)} | ----: | ---------: |`);
  for (const [label, us, ratio] of rows) {
    console.log(
      `| ${label.padEnd(width)} | ${us.toFixed(0).padStart(5)} | ${
        ratio.toFixed(2).padStart(10)
      } |`,
    );
  }
} finally {
  await sql.end({ timeout: 1 });
  server.stop();
}
