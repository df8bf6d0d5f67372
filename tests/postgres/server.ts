// A throwaway PostgreSQL server for the tests: Debian's binaries, a data
// directory in a temporary directory, listening only on 127.0.0.1 on a free
// port, its unix socket in the temporary directory. As root, initdb and the
// server run as the `postgres` system user (runuser). Stopped with
// `pg_ctl stop -m immediate` and the directory removed; exit, unload and
// signal listeners do the same if the test process ends before its teardown
// test or is interrupted.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running throwaway server. */
export interface PgServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** The temporary directory (data directory, socket, log). */
  readonly dir: string;
  /** The postmaster's pid. */
  pid(): number;
  /** Stops it at once (`-m immediate`: no shutdown checkpoint) and starts it again. */
  restart(): void;
  /** Stops it (`-m immediate`) and removes its directory; idempotent. */
  stop(): void;
  /** Whether `stop()` has run. */
  readonly stopped: boolean;
}

/** What enables the tests where no server can be started. */
export const ENABLE =
  "install Debian's postgresql (apt-get install postgresql, as `bash .ci/run` does)";

/**
 * The directory of PostgreSQL's server binaries (`LOCKKIT_PG_BIN`, else the
 * newest of Debian's, else the PATH), or the reason why there is none.
 */
function binDir(): string | { reason: string } {
  const chosen = process.env.LOCKKIT_PG_BIN;
  if (chosen !== undefined && chosen !== "") {
    if (existsSync(join(chosen, "initdb")) && existsSync(join(chosen, "pg_ctl"))) return chosen;
    return { reason: `LOCKKIT_PG_BIN=${chosen} has no initdb and pg_ctl; ${ENABLE}` };
  }
  const root = "/usr/lib/postgresql";
  let versions: string[] = [];
  try {
    versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) =>
      Number(b) - Number(a)
    );
  } catch {
    // No Debian layout.
  }
  for (const version of versions) {
    const dir = join(root, version, "bin");
    if (existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"))) return dir;
  }
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir !== "" && existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"))) {
      return dir;
    }
  }
  return { reason: `no PostgreSQL server binaries (initdb, pg_ctl) found; ${ENABLE}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function idOf(user: string, flag: "-u" | "-g"): number | undefined {
  const result = spawnSync("id", [flag, user], { encoding: "utf8" });
  return result.status === 0 ? Number(result.stdout.trim()) : undefined;
}

/**
 * Starts a server, or returns why it cannot (no binaries; root without a
 * `postgres` user). A server that fails to start for another reason throws:
 * that is a failure, not a skip.
 */
export async function startPostgres(): Promise<PgServer | { reason: string }> {
  const bin = binDir();
  if (typeof bin !== "string") return bin;
  const root = process.getuid?.() === 0;
  let asUser: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), "filelock-pg-"));
  if (root && !existsSync("/usr/sbin/runuser") && !existsSync("/sbin/runuser")) {
    rmSync(dir, { recursive: true, force: true });
    return { reason: `running as root and runuser(1) is missing (util-linux); ${ENABLE}` };
  }
  if (root) {
    const uid = idOf("postgres", "-u");
    const gid = idOf("postgres", "-g");
    if (uid === undefined || gid === undefined) {
      rmSync(dir, { recursive: true, force: true });
      return { reason: `running as root and there is no 'postgres' system user; ${ENABLE}` };
    }
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
    asUser = ["runuser", "-u", "postgres", "--"];
  }
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  const pgctl = (args: string[]): void => {
    const result = spawnSync(asUser[0] ?? join(bin, "pg_ctl"), [
      ...asUser.slice(1),
      ...(root ? [join(bin, "pg_ctl")] : []),
      ...args,
    ], { encoding: "utf8", cwd: dir });
    if (result.status !== 0) {
      let serverLog = "";
      try {
        serverLog = readFileSync(log, "utf8");
      } catch {
        // No log yet.
      }
      throw new Error(`pg_ctl ${args.join(" ")}: ${result.stderr}${result.stdout}\n${serverLog}`);
    }
  };
  let port = 0;
  let stopped = false;
  const start = (): void => {
    const options = [
      "-c listen_addresses=127.0.0.1",
      `-p ${port}`,
      `-c unix_socket_directories=${dir}`,
      // Throwaway: no fsync (an immediate stop still keeps what reached the kernel).
      "-c fsync=off",
      "-c max_connections=200",
    ].join(" ");
    pgctl(["-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"]);
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      if (existsSync(join(data, "postmaster.pid"))) {
        pgctl(["-D", data, "-m", "immediate", "-w", "stop"]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const init = spawnSync(asUser[0] ?? join(bin, "initdb"), [
      ...asUser.slice(1),
      ...(root ? [join(bin, "initdb")] : []),
      "-D",
      data,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
    ], { encoding: "utf8", cwd: dir });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}${init.stdout}`);
    port = await freePort();
    start();
  } catch (error) {
    stop();
    throw error;
  }
  // The safety net: a test process that ends early, or is interrupted, still
  // stops its server.
  process.on("exit", stop);
  (globalThis as { addEventListener?: (type: string, fn: () => void) => void })
    .addEventListener?.("unload", stop);
  for (const [name, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    process.once(name, () => {
      stop();
      process.exit(code);
    });
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    pid: () => Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]),
    restart: () => {
      pgctl(["-D", data, "-m", "immediate", "-w", "stop"]);
      start();
    },
    stop,
    get stopped() {
      return stopped;
    },
  };
}
