// A real filesystem whose flock(2) fails, or never answers, for the tests of the pidfile
// fallback: tests/fuse/flockfs.c, a passthrough FUSE filesystem, built once and mounted per
// test. Node built-ins only, so that Deno, Bun and Node tests can import it. README.md here
// says how to use it.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** How flock(2) answers on the mount (see flockfs.c). */
export type FlockMode = "passthrough" | "enolck" | "eopnotsupp" | "ebadf-readonly" | "hang";

/** Every mode, for tests that loop over them. */
export const FLOCK_MODES: readonly FlockMode[] = [
  "passthrough",
  "enolck",
  "eopnotsupp",
  "ebadf-readonly",
  "hang",
];

/** What makes the FUSE tests run on Debian/Ubuntu. */
export const FUSE_ENABLE =
  "apt-get install fuse3 libfuse3-dev pkg-config gcc, and run the tests as root";

/** Options of `mountFlockfs`. */
export interface FlockfsOptions {
  /**
   * A control for tests: flockfs does not want FUSE_CAP_FLOCK_LOCKS, so the kernel takes
   * flock locks on the mount itself (as on any FUSE filesystem without a flock handler),
   * never asks flockfs, and `mode` has no effect.
   */
  localFlock?: boolean;
}

/** A live flockfs mount. */
export interface FuseMount {
  /** The flock mode chosen at mount time. */
  readonly mode: FlockMode;
  /** Where the filesystem is mounted: lock files go here. */
  readonly mountpoint: string;
  /** The directory it mirrors: the same files, seen without FUSE. */
  readonly backing: string;
  /** The flockfs process. */
  readonly pid: number;
  /** The FUSE connection id (the minor device number of the mount's st_dev). */
  readonly connection: number;
  /**
   * Aborts the FUSE connection: every request waiting on the filesystem (a hung flock)
   * fails at once with ECONNABORTED, and every later access fails with ENOTCONN. The
   * mount itself stays until `unmount()`.
   */
  abort(): void;
  /**
   * Aborts the connection, unmounts (lazily), ends the flockfs process and removes the
   * temporary directories. Never hangs on a stuck request; idempotent.
   */
  unmount(): Promise<void>;
}

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const source = fileURLToPath(new URL("flockfs.c", import.meta.url));
const cacheDir = join(repoRoot, ".cache", "fuse");

function onPath(name: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    if (dir === "") return false;
    try {
      return statSync(join(dir, name)).isFile();
    } catch {
      return false;
    }
  });
}

let unavailable: { reason: string | undefined } | undefined;

/**
 * Why the FUSE tests cannot run here, with what enables them; undefined when they can.
 * Checked once per process.
 */
export function fuseUnavailable(): string | undefined {
  unavailable ??= { reason: findReason() };
  return unavailable.reason;
}

function findReason(): string | undefined {
  const missing = (what: string) => `${what}; to run the FUSE tests: ${FUSE_ENABLE}`;
  if (process.platform !== "linux") return `FUSE tests need Linux, not ${process.platform}`;
  const uid = process.getuid?.();
  if (uid !== 0) return missing(`not root (uid ${uid}): mounting FUSE needs root`);
  try {
    closeSync(openSync("/dev/fuse", "r+"));
  } catch (error) {
    return missing(`/dev/fuse is not usable (${(error as Error).message})`);
  }
  for (const command of ["gcc", "pkg-config", "fusermount3", "umount"]) {
    if (!onPath(command)) return missing(`no ${command} on PATH`);
  }
  const pkg = spawnSync("pkg-config", ["--exists", "fuse3"]);
  if (pkg.status !== 0) return missing("no libfuse3 headers (pkg-config fuse3 fails)");
  return undefined;
}

let built: string | undefined;

/**
 * Compiles flockfs.c into `<repo>/.cache/fuse/flockfs` unless the binary there was built from
 * the same source with the same flags, and returns its path. Safe when several processes
 * call it at once: each compiles to its own temporary name and renames.
 */
export function buildFlockfs(): string {
  if (built) return built;
  const binary = join(cacheDir, "flockfs");
  const stamp = `${binary}.stamp`;
  const pkg = (args: string[]) => {
    const result = spawnSync("pkg-config", [...args, "fuse3"], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`pkg-config ${args.join(" ")}: ${result.stderr}`);
    return result.stdout.trim();
  };
  const [major, minor] = pkg(["--modversion"]).split(".").map(Number);
  const flags = ["-std=gnu11", "-O2", "-Wall", "-Wextra"];
  // libfuse 3.12 and later: the API whose thread pool can grow past 10 workers.
  if (major > 3 || (major === 3 && minor >= 12)) flags.push("-DFUSE_USE_VERSION=312");
  const libs = pkg(["--cflags", "--libs"]).split(/\s+/).filter((f) => f !== "");
  const key = createHash("sha256")
    .update(readFileSync(source))
    .update(JSON.stringify([flags, libs]))
    .digest("hex");
  const current = existsSync(binary) && existsSync(stamp) && readFileSync(stamp, "utf8") === key;
  if (!current) {
    mkdirSync(cacheDir, { recursive: true });
    const temporary = `${binary}.${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      const gcc = spawnSync("gcc", [...flags, "-o", temporary, source, ...libs], {
        encoding: "utf8",
      });
      if (gcc.status !== 0) {
        throw new Error(`gcc flockfs.c failed (${gcc.status ?? gcc.signal}): ${gcc.stderr}`);
      }
      renameSync(temporary, binary);
      writeFileSync(`${temporary}.stamp`, key);
      renameSync(`${temporary}.stamp`, stamp);
    } finally {
      rmSync(temporary, { force: true });
      rmSync(`${temporary}.stamp`, { force: true });
    }
  }
  built = binary;
  return binary;
}

interface MountEntry {
  /** st_dev of the mount as "major:minor". */
  device: string;
  mountpoint: string;
  fstype: string;
}

/** The mounts of this process's mount namespace, from /proc/self/mountinfo. */
function mounts(): MountEntry[] {
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l !== "").map(
    (line) => {
      const fields = line.split(" ");
      const dash = fields.indexOf("-");
      return { device: fields[2], mountpoint: unescape(fields[4]), fstype: fields[dash + 1] };
    },
  );
}

/** Whether something is mounted on `path` (which must be canonical, as mountinfo prints it). */
export function isMounted(path: string): boolean {
  return mounts().some((m) => m.mountpoint === path);
}

/** flock(2)'s number on this machine's architecture. */
const FLOCK_SYSCALL = process.arch === "arm64" ? 32 : 73;

/**
 * Whether process `pid` waits in flock(2) for an answer of a FUSE filesystem: in the flock
 * syscall (`/proc/<pid>/syscall`; a process that is still opening the file is not) and in
 * FUSE's request wait (its wait channel or kernel stack).
 */
export function inFuseRequest(pid: number): boolean {
  try {
    const call = readFileSync(`/proc/${pid}/syscall`, "utf8").split(" ")[0];
    if (Number(call) !== FLOCK_SYSCALL) return false;
  } catch {
    return false;
  }
  for (const file of ["wchan", "stack"]) {
    try {
      if (readFileSync(`/proc/${pid}/${file}`, "utf8").includes("request_wait_answer")) {
        return true;
      }
    } catch {
      // gone, or not readable here
    }
  }
  return false;
}

/**
 * The state letter of process `pid` from /proc (`R`, `S`, `D` uninterruptible, `Z`...),
 * or undefined when there is no such process.
 */
export function processState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0];
  } catch {
    return undefined;
  }
}

/** Aborts the FUSE connection through fusectl's abort file. */
function abortConnection(connection: number, pid: number): void {
  const file = `/sys/fs/fuse/connections/${connection}/abort`;
  if (existsSync(file)) {
    writeFileSync(file, "1");
    return;
  }
  // fusectl is not mounted here (systemd mounts it; containers and minimal VMs may not).
  // Mount it in a throwaway mount namespace rather than change the machine's mounts.
  const script = 'mount -t fusectl fusectl /sys/fs/fuse/connections && echo 1 > "$0"';
  const result = spawnSync(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", script, file],
    { stdio: "ignore", timeout: 10_000 },
  );
  if (result.status === 0) return;
  // Last resort: the kernel aborts the connection when the last /dev/fuse descriptor
  // closes, that is, when the flockfs process dies.
  kill(pid, "SIGKILL");
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Unmounts lazily: never waits for the filesystem, even with requests stuck in it. */
function detach(mountpoint: string): void {
  if (!isMounted(mountpoint)) return;
  spawnSync("fusermount3", ["-u", "-z", mountpoint], { stdio: "ignore", timeout: 10_000 });
  if (!isMounted(mountpoint)) return;
  spawnSync("umount", ["-l", mountpoint], { stdio: "ignore", timeout: 10_000 });
  if (isMounted(mountpoint)) throw new Error(`flockfs: cannot unmount ${mountpoint}`);
}

interface Live {
  root: string;
  mountpoint: string;
  connection: number;
  child: ChildProcess;
}

/** Mounts not yet unmounted, cleaned up at exit if a test forgot or failed midway. */
const live = new Set<Live>();
let hooked = false;

/** Synchronous cleanup for process exit: abort, kill, unmount, remove. */
function cleanUpSync(mount: Live): void {
  live.delete(mount);
  try {
    if (isMounted(mount.mountpoint)) abortConnection(mount.connection, mount.child.pid!);
    kill(mount.child.pid!, "SIGKILL");
    detach(mount.mountpoint);
    rmSync(mount.root, { recursive: true, force: true });
  } catch (error) {
    console.error(`flockfs: cleanup of ${mount.mountpoint} failed: ${error}`);
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** libfuse's -o values: a backslash escapes a comma or a backslash. */
const escapeOption = (value: string) => value.replace(/[\\,]/g, "\\$&");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Mounts flockfs in `mode` on a fresh temporary directory mirroring another fresh one, and
 * resolves once the mount answers. Call `unmount()` in a `finally`; a mount still live when
 * the process exits is cleaned up then, and flockfs unmounts itself and removes the
 * directories if this process dies without exiting normally (it watches a pipe from us).
 */
export async function mountFlockfs(
  mode: FlockMode,
  options: FlockfsOptions = {},
): Promise<FuseMount> {
  if (!FLOCK_MODES.includes(mode)) throw new Error(`unknown flock mode ${mode}`);
  const reason = fuseUnavailable();
  if (reason) throw new Error(`FUSE is unavailable: ${reason}`);
  const binary = buildFlockfs();
  // Canonical, as /proc/self/mountinfo prints mount points.
  const root = realpathSync(mkdtempSync(join(tmpdir(), "flockfs-")));
  const backing = join(root, "backing");
  const mountpoint = join(root, "mnt");
  const log = join(root, "flockfs.log");
  mkdirSync(backing);
  mkdirSync(mountpoint);
  // The log goes to a file: a pipe read by us would keep the event loop alive.
  const logFd = openSync(log, "w");
  let child: ChildProcess;
  try {
    child = spawn(
      binary,
      // watch_stdin: should this process die without its exit hook running (SIGKILL),
      // flockfs sees its stdin close, unmounts itself and removes `root`.
      [
        "-f",
        "-o",
        `flockmode=${mode},watch_stdin,cleanup=${escapeOption(root)}`,
        ...(options.localFlock ? ["-o", "local_flock"] : []),
        backing,
        mountpoint,
      ],
      { stdio: ["pipe", "ignore", logFd] },
    );
  } finally {
    closeSync(logFd);
  }
  child.on("error", () => {}); // reported through the exit below
  // Do not keep the test process alive for the mount's sake; the exit hook cleans up.
  child.unref();
  const readLog = () => {
    try {
      return readFileSync(log, "utf8").trim();
    } catch {
      return "";
    }
  };

  let entry: MountEntry | undefined;
  const until = performance.now() + 15_000;
  while (!(entry = mounts().find((m) => m.mountpoint === mountpoint))) {
    if (child.exitCode !== null || child.signalCode !== null || performance.now() > until) {
      const log = readLog();
      kill(child.pid!, "SIGKILL"); // its death aborts a connection it may have made
      await exited(child, 5_000);
      child.stdin?.destroy();
      detach(mountpoint);
      rmSync(root, { recursive: true, force: true });
      throw new Error(
        `flockfs did not mount (exit ${child.exitCode ?? child.signalCode}): ${log}`,
      );
    }
    await sleep(10);
  }
  const [major, minor] = entry.device.split(":").map(Number);
  const connection = major * 2 ** 20 + minor;
  const state: Live = { root, mountpoint, connection, child };
  live.add(state);
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const mount of [...live]) cleanUpSync(mount);
    });
  }

  let unmounting: Promise<void> | undefined;
  const unmount = (): Promise<void> => {
    unmounting ??= (async () => {
      // Should this fail midway, the mount stays in `live` for the exit hook.
      if (isMounted(mountpoint)) abortConnection(connection, child.pid!);
      detach(mountpoint);
      // Once aborted, flockfs ends by itself; make sure.
      if (!await exited(child, 5_000)) {
        kill(child.pid!, "SIGKILL");
        if (!await exited(child, 10_000)) {
          throw new Error(`flockfs (pid ${child.pid}) survived SIGKILL`);
        }
      }
      child.stdin?.destroy();
      rmSync(root, { recursive: true, force: true });
      live.delete(state);
    })();
    return unmounting;
  };

  try {
    // The first request waits for the INIT exchange: the filesystem answers from here on.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const top = await Promise.race([
      stat(mountpoint),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no answer in 15 s")), 15_000);
      }),
    ]).finally(() => clearTimeout(timer));
    if (top.dev === statSync(backing).dev) throw new Error("the mount point is not the mount");
  } catch (error) {
    await unmount();
    throw new Error(`flockfs mounted but does not answer: ${error}: ${readLog()}`);
  }

  return {
    mode,
    mountpoint,
    backing,
    pid: child.pid!,
    connection,
    abort: () => {
      if (isMounted(mountpoint)) abortConnection(connection, child.pid!);
    },
    unmount,
  };
}

/**
 * Runs `fn` on a fresh flockfs mount in `mode` and unmounts it afterwards, whatever
 * happens (a hung flock included: the unmount aborts the connection first).
 */
export async function withFlockfs(
  mode: FlockMode,
  fn: (mount: FuseMount) => Promise<void> | void,
  options: FlockfsOptions = {},
): Promise<void> {
  const mount = await mountFlockfs(mode, options);
  try {
    await fn(mount);
  } finally {
    await mount.unmount();
  }
}
