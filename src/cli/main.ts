/**
 * `filelock`: a drop-in `flock(1)` for Deno, Bun and Node that can also say
 * who holds the lock. It takes the lock, runs a command while holding it, and
 * releases it when the command ends; or locks a descriptor the shell opened.
 * Options, exit codes and output follow util-linux `flock(1)`.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-ffi --allow-run --allow-env --allow-sys=hostname \
 *   jsr:@lockkit/filelock/cli -n /tmp/backup.lock ./backup.sh
 * ```
 *
 * @example
 * ```ts
 * import { main } from "@lockkit/filelock/cli";
 *
 * const code = await main(["--status", "/tmp/backup.lock"]);
 * console.log(code === 0 ? "free" : "held");
 * ```
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { LockError, probe } from "../../mod.ts";
import { VERSION } from "../version.ts";
import { type Options, parseArgs, USAGE, UsageError } from "./args.ts";
import { EX_UNAVAILABLE, EX_USAGE } from "./exit_codes.ts";
import { lockDescriptor } from "./lock_descriptor.ts";
import { lockFile } from "./lock_file.ts";
import { followLinks } from "./lock_path.ts";
import { processOutput } from "./output.ts";
import { type CliOutput, status } from "./report.ts";

export type { CliOutput };

/**
 * Runs the CLI with `args` (without the program name) and resolves to the
 * exit code; it never calls `process.exit` itself (with `-F` it replaces the
 * process with the command).
 *
 * @example
 * ```ts
 * import { main } from "@lockkit/filelock/cli";
 *
 * const code = await main(["-n", "/tmp/job.lock", "echo", "hello"]);
 * ```
 */
export async function main(args: readonly string[], output?: CliOutput): Promise<number> {
  const out = output ?? processOutput;
  let options: Options;
  try {
    options = parseArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    out.stderr(`filelock: ${error.message}\nTry 'filelock --help' for more information.\n`);
    return EX_USAGE;
  }
  // The lock path as flock(1) opens it: through its symbolic links.
  if (options.lockfile !== "") options = { ...options, lockfile: followLinks(options.lockfile) };
  switch (options.action) {
    case "help":
      out.stdout(USAGE);
      return 0;
    case "version":
      out.stdout(`filelock ${VERSION}\n`);
      return 0;
    case "probe":
      try {
        const result = options.lockfile === ""
          ? probe({ backend: options.backend })
          : probe(options.lockfile, { backend: options.backend });
        out.stdout(`${JSON.stringify(result, null, 2)}\n`);
        return 0;
      } catch (error) {
        if (!(error instanceof LockError)) throw error;
        out.stderr(`filelock: ${error.message}\n`);
        return EX_UNAVAILABLE;
      }
    case "status":
      return status(options, out);
    case "descriptor":
      return await lockDescriptor(options, out);
  }
  return await lockFile(options, out);
}

function isMainModule(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  const script = process.argv[1];
  return script !== undefined && script === fileURLToPath(import.meta.url);
}

if (isMainModule()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
