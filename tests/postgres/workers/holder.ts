// Holds the lock `name` and reports on stdout: "held <fence>", then
// "compromised <code>" and "aborted" if it loses it. With go=<file>, once the
// file exists it acts as a holder that woke up from a long pause: it writes
// to the test's resource with its fence ("fenced-write <rows>") and without
// ("unfenced-write <rows>"), then releases ("release ok" or "release <code>").
// argv: url name leaseMs client=porsager|bunsql [go=<file>]
import { existsSync } from "node:fs";
import { LockError, postgresLocks } from "../../../src/postgres/mod.ts";
import { args as argv } from "../../workers/args.ts";
import { type ClientKind, connect } from "../clients.ts";

const [url, name, leaseText, ...flags] = argv;
const option = (key: string): string | undefined =>
  flags.find((flag) => flag.startsWith(`${key}=`))?.slice(key.length + 1);
const kind = (option("client") ?? "porsager") as ClientKind;
const client = connect(kind, url, 3);
const locks = postgresLocks(client.sql, { leaseMs: Number(leaseText) });

const lock = await locks.acquire(name, {
  onCompromised: (error) => console.log(`compromised ${error.code}`),
});
lock.signal.addEventListener("abort", () => console.log("aborted"));
console.log(`held ${lock.fence}`);

const go = option("go");
if (go === undefined) {
  setInterval(() => {}, 1000); // hold until killed
} else {
  while (!existsSync(go)) await new Promise((resolve) => setTimeout(resolve, 20));
  const fence = String(lock.fence);
  const fenced = await client.query(
    "UPDATE resource SET owner = 'holder', fence = $1::bigint WHERE id = 1 AND fence < $1::bigint RETURNING id",
    [fence],
  );
  console.log(`fenced-write ${fenced.length}`);
  const unfenced = await client.query(
    "UPDATE unfenced SET owner = 'holder' WHERE id = 1 RETURNING id",
  );
  console.log(`unfenced-write ${unfenced.length}`);
  try {
    await lock.release();
    console.log("release ok");
  } catch (error) {
    console.log(`release ${error instanceof LockError ? error.code : String(error)}`);
  }
  await client.end();
}
