// The backend request in the CLI (issue 15): FILELOCK_BACKEND means what
// --backend means, in descriptor mode too, where only the FFI backend can
// flock a descriptor it did not open.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliArgv, finish, type Finished, inTemp, runtimeName, start } from "../helpers.ts";

const q = (words: string[]): string => words.map((w) => `'${w}'`).join(" ");

/** `filelock <args> 200` from a shell that opened descriptor 200 on `lock`, with `env`. */
function onDescriptor(
  lock: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Finished> {
  return finish(
    start(["bash", "-c", `exec 200>'${lock}'; exec ${q(cliArgv([...args, "200"]))}`], env),
  );
}

test(
  `${runtimeName}: cli: descriptor mode: FILELOCK_BACKEND and --backend refuse the same backends alike`,
  inTemp(async (dir) => {
    const lock = join(dir, "d.lock");
    for (const backend of ["native", "pidfile"]) {
      const [byVariable, byOption] = await Promise.all([
        onDescriptor(lock, [], { FILELOCK_BACKEND: backend }),
        onDescriptor(lock, ["--backend", backend]),
      ]);
      assert.equal(byOption.code, 69, `--backend ${backend}: ${byOption.stderr}`);
      assert.equal(
        byVariable.code,
        69,
        `FILELOCK_BACKEND=${backend} must not fall back to FFI: ${byVariable.stderr}`,
      );
      assert.equal(byVariable.stderr, byOption.stderr, "the same reason");
      assert.match(byVariable.stderr, new RegExp(`^filelock: .*${backend}`));
    }
    // Control: the variable is read, and an FFI request (or none) locks the descriptor.
    for (const env of [{ FILELOCK_BACKEND: "ffi" }, {}]) {
      const locked = await onDescriptor(lock, ["-n"], env);
      assert.equal(locked.code, 0, `${JSON.stringify(env)}: ${locked.stderr}`);
    }
    const bogus = await onDescriptor(lock, [], { FILELOCK_BACKEND: "bogus" });
    assert.equal(bogus.code, 69);
    assert.match(bogus.stderr, /FILELOCK_BACKEND must be one of/);
  }),
);
