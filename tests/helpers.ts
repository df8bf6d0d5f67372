// Shared helpers of the test suite: temp dirs, the runtime binaries, child processes.
import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const repoRoot: string = fileURLToPath(new URL("..", import.meta.url));
export const workers: string = join(repoRoot, "tests", "workers");
/** A runtime binary installed by npm. */
export const bin = (name: string): string => join(repoRoot, "node_modules", ".bin", name);

const scope = globalThis as { Deno?: unknown; Bun?: unknown };
export const runtimeName: string = scope.Deno ? "deno" : scope.Bun ? "bun" : "node";

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "filelock-test-"));
}

/** A test body run in a fresh temporary directory, removed afterwards whatever happens. */
export function inTemp(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = tempDir();
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** The PID of a process that has exited (and been reaped): nobody runs under it now. */
export async function deadPid(): Promise<number> {
  const child = spawn("true", [], { stdio: "ignore" });
  await exited(child);
  return child.pid!;
}

/**
 * The bytes of a pidfile lock record: by default one naming this process on
 * this host, without a start token; `fields` replace or add fields.
 */
export function pidfileRecord(fields: Record<string, unknown> = {}): string {
  return `${
    JSON.stringify({
      pid: process.pid,
      hostname: hostname(),
      startToken: null,
      acquiredAt: new Date().toISOString(),
      token: "0123456789abcdef0123456789abcdef",
      backend: "pidfile",
      ...fields,
    })
  }\n`;
}

/** Child process flavours: each runs a TypeScript worker script. */
export type Flavour = "deno-ffi" | "deno-native" | "deno-plain" | "bun" | "node";
/** One of each kernel backend. */
export const FLAVOURS: Flavour[] = ["deno-ffi", "deno-native", "bun", "node"];
/**
 * The pidfile tests' processes. Deno runs without FFI (and without /proc, which
 * Deno opens only under --allow-all): the host name and signal 0 are what it
 * needs to write records others can judge and to judge theirs.
 */
export const PIDFILE_FLAVOURS: Flavour[] = ["deno-plain", "bun", "node"];

/** The newest modification time of the files under `paths` (recursively). */
function newest(paths: string[]): number {
  let latest = 0;
  for (const path of paths) {
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const name of readdirSync(path)) latest = Math.max(latest, newest([join(path, name)]));
    } else {
      latest = Math.max(latest, stat.mtimeMs);
    }
  }
  return latest;
}

let sourcesChanged: number | undefined;

/** When the library's sources last changed. */
function sourcesTime(): number {
  return sourcesChanged ??= newest(["mod.ts", "src", "ffi"].map((p) => join(repoRoot, p)));
}

/**
 * The argv prefix that runs `built` (JavaScript bundled from the sources by
 * `npm test`'s build step) in Node while it is newer than every source it
 * came from, else the TypeScript `source` through tsx (much slower to start).
 */
function nodeRunning(built: string, source: string, extraSources: string[] = []): string[] {
  const fresh = existsSync(built) &&
    statSync(built).mtimeMs >= Math.max(sourcesTime(), newest([source, ...extraSources]));
  // tsx by path: the command may run in a directory where a bare `tsx` does not resolve.
  const tsx = pathToFileURL(join(repoRoot, "node_modules", "tsx", "dist", "loader.mjs")).href;
  return fresh ? ["node", built] : ["node", "--import", tsx, source];
}

/** How Node runs the CLI: the built `dist/cli.js` where it is up to date (what npm users run). */
export function nodeCli(): string[] {
  return nodeRunning(join(repoRoot, "dist", "cli.js"), join(repoRoot, "src", "cli", "main.ts"));
}

/** The `filelock` CLI in the runtime running this test, followed by `args`. */
export function cliArgv(args: string[] = []): string[] {
  const source = join(repoRoot, "src", "cli", "main.ts");
  switch (runtimeName) {
    case "deno":
      return [bin("deno"), "run", "-A", source, ...args];
    case "bun":
      return [bin("bun"), source, ...args];
    default:
      return [...nodeCli(), ...args];
  }
}

export function command(flavour: Flavour, script: string, args: string[]): string[] {
  const path = join(workers, script);
  switch (flavour) {
    case "deno-ffi":
      return [bin("deno"), "run", "-A", path, ...args];
    case "deno-native":
      return [bin("deno"), "run", "--allow-read", "--allow-write", "--allow-env", path, ...args];
    case "deno-plain":
      return [
        bin("deno"),
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-sys=hostname",
        "--allow-run",
        path,
        ...args,
      ];
    case "bun":
      return [bin("bun"), path, ...args];
    case "node":
      return [
        ...nodeRunning(
          join(repoRoot, ".cache", "workers", script.replace(/\.ts$/, ".mjs")),
          path,
          [join(workers, "args.ts")],
        ),
        ...args,
      ];
  }
}

export function start(argv: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(argv[0], argv.slice(1), {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export interface Finished {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export function finish(child: ChildProcess): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += d));
  child.stderr?.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    let code: number | null = null;
    let signal: string | null = null;
    let pending = 2;
    const done = () => --pending === 0 && resolve({ code, signal, stdout, stderr });
    child.on("exit", (c, s) => {
      code = c;
      signal = s;
      done();
    });
    child.on("close", done);
  });
}

export async function run(argv: string[], env: Record<string, string> = {}): Promise<Finished> {
  const result = await finish(start(argv, env));
  if (result.code !== 0) {
    throw new Error(`${argv.join(" ")} exited ${result.code ?? result.signal}: ${result.stderr}`);
  }
  return result;
}

/** Resolves when the child prints `word` on stdout. */
export function waitFor(child: ChildProcess, word: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    let errors = "";
    const timer = setTimeout(() => reject(new Error(`no '${word}' in time: ${errors}`)), timeoutMs);
    child.stderr?.on("data", (d) => (errors += d));
    child.stdout?.on("data", (d) => {
      seen += d;
      if (seen.includes(word)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before '${word}': ${errors}`));
    });
  });
}

/**
 * Resolves once the child has been reaped ("exit"), not merely when its pipes
 * closed: a dying process closes stdout before its other descriptors.
 */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.on("exit", () => resolve()));
}

export function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}

export function hasCommand(name: string): boolean {
  const paths = (process.env.PATH ?? "").split(":");
  return paths.some((dir) => {
    try {
      return readdirSync(dir).includes(name);
    } catch {
      return false;
    }
  });
}

/**
 * Resolves once process `pid` is gone or a zombie, read from /proc: a zombie
 * has closed all its descriptors. Runtimes' child-process events can fire
 * before that (a dying process closes stdout first).
 */
export async function dead(pid: number, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    let state: string;
    try {
      state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0];
    } catch {
      return;
    }
    // The leader of a multi-threaded process turns zombie before its other
    // threads finish exiting; descriptors close when the last one does.
    if ((state === "Z" || state === "X") && threads(pid) <= 1) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`process ${pid} still alive`);
}

function threads(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}

/**
 * Sends `signal` to the child with `process.kill`: Deno's `child.kill` makes
 * the child's exit report that signal (and fire early) even when the child
 * caught it and exited on its own.
 */
export function signal(child: ChildProcess, name: NodeJS.Signals): void {
  process.kill(child.pid!, name);
}

/**
 * Runs workers that wait for a start signal (a `go=<file>` argument; they
 * print "ready" first), so that they really overlap however long each runtime takes to
 * start; throws if any fails.
 */
export async function runTogether(
  argvs: string[][],
  dir: string,
  others: string[][] = [],
): Promise<void> {
  const go = join(dir, "go");
  const children = argvs.map((argv) => start([...argv, `go=${go}`]));
  const results = children.map((child) => finish(child));
  try {
    await Promise.all(children.map((child) => waitFor(child, "ready", 60_000)));
  } catch (error) {
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(results);
    throw error;
  }
  writeFileSync(go, "");
  // Programs without the start signal (flock(1), python) start now.
  const all = [...argvs, ...others];
  const finished = await Promise.all([...results, ...others.map((argv) => finish(start(argv)))]);
  finished.forEach((result, i) => {
    if (result.code !== 0) {
      throw new Error(
        `${all[i].join(" ")} exited ${result.code ?? result.signal}: ${result.stderr}`,
      );
    }
  });
}

/** What a counter run left behind. */
export interface Counted {
  /** The counter's final value (NaN when overlapping writes tore it). */
  total: number;
  /** Whether the lock file still exists afterwards. */
  lockLeft: boolean;
}

/**
 * Runs `tests/workers/counter.ts` in each flavour on one counter file, all
 * started together, each incrementing it `n` times with `flags(i)`
 * (`["lock"]`, `["nolock"]`, plus options), and `others(lock, counter)`
 * (foreign lock users such as flock(1)) alongside.
 */
export async function countTogether(
  dir: string,
  n: number,
  flavours: readonly Flavour[],
  flags: (index: number) => string[],
  others: (lock: string, counter: string) => string[][] = () => [],
): Promise<Counted> {
  const lock = join(dir, "c.lock");
  const counter = join(dir, "counter");
  writeFileSync(counter, "0");
  await runTogether(
    flavours.map((flavour, i) =>
      command(flavour, "counter.ts", [lock, counter, String(n), ...flags(i)])
    ),
    dir,
    others(lock, counter),
  );
  return { total: Number(readFileSync(counter, "utf8")), lockLeft: existsSync(lock) };
}
