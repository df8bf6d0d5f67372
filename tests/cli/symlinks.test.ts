// A symbolic link as the lock path (issue 15): flock(1) opens through it, so
// filelock follows it too and locks what it names; the library itself still
// refuses links (O_NOFOLLOW).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { LockError, tryAcquire } from "../../mod.ts";
import {
  cliArgv,
  exited,
  finish,
  hasCommand,
  inTemp,
  runtimeName,
  start,
  waitFor,
} from "../helpers.ts";

const FLOCK = hasCommand("flock");
const flockSkip = FLOCK ? undefined : "util-linux flock(1) is not on PATH";
if (!FLOCK) console.log(`SKIP symbolic links side by side with flock(1): ${flockSkip}`);

/** Links in `dir/<name>/`, as each case wants them: `[link, target]`, relative or absolute. */
const CASES: [string, [string, string][], string][] = [
  ["a link to a missing file", [["link.lock", "target.lock"]], "link.lock"],
  ["a link to a link", [["one.lock", "two.lock"], ["two.lock", "target.lock"]], "one.lock"],
  ["a link to a directory", [["dirlink", "real"]], "dirlink"],
  ["a relative link with ..", [["sub/rel.lock", "../target.lock"]], "sub/rel.lock"],
  ["a loop of links", [["loop-a", "loop-b"], ["loop-b", "loop-a"]], "loop-a"],
];

/** Makes the links of a case under `dir`. */
function make(dir: string, links: [string, string][]): void {
  mkdirSync(join(dir, "sub"), { recursive: true });
  mkdirSync(join(dir, "real"), { recursive: true });
  for (const [link, target] of links) symlinkSync(target, join(dir, link));
}

test(
  `${runtimeName}: cli: symbolic links as lock paths do what they do for flock(1)`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    for (const [name, links, path] of CASES) {
      const [ours, theirs] = [join(dir, "ours", name), join(dir, "theirs", name)];
      make(ours, links);
      make(theirs, links);
      const [a, b] = await Promise.all([
        finish(start(cliArgv([join(ours, path), "true"]))),
        finish(start(["flock", join(theirs, path), "true"])),
      ]);
      assert.equal(a.code, b.code, `${name}: filelock ${a.code} (${a.stderr}), flock(1) ${b.code}`);
      assert.equal(
        existsSync(join(ours, "target.lock")),
        existsSync(join(theirs, "target.lock")),
        `${name}: the file a link names is created as flock(1) creates it`,
      );
      if (name === "a loop of links") {
        assert.equal(a.code, 66);
        assert.match(a.stderr, /Too many levels of symbolic links\n$/);
      }
    }
  }),
);

test(
  `${runtimeName}: cli: the lock taken through a link is the lock on the file it names`,
  { skip: flockSkip },
  inTemp(async (dir) => {
    const target = join(dir, "target.lock");
    const link = join(dir, "link.lock");
    symlinkSync("target.lock", link);
    // filelock holds through the link: flock(1) on the file itself is refused.
    const inside = await finish(
      start(cliArgv([link, "sh", "-c", `flock -n '${target}' true; echo $?`])),
    );
    assert.equal(inside.stdout, "1\n", inside.stderr);
    // flock(1) holds the file: filelock is refused through the link, and --status sees it.
    const holder = spawn("flock", [target, "sh", "-c", "echo held; exec sleep 60"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    try {
      await waitFor(holder, "held");
      assert.equal((await finish(start(cliArgv(["-n", link, "true"])))).code, 1);
      const status = await finish(start(cliArgv(["--status", link])));
      assert.equal(status.code, 1, status.stderr);
      assert.match(status.stdout, new RegExp(`held by pid ${holder.pid}`));
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
      await exited(holder);
    }
    // Control: the library never follows a link (O_NOFOLLOW), the CLI does it for flock(1)'s sake.
    assert.throws(
      () => tryAcquire(link),
      (e: unknown) => e instanceof LockError && e.code === "ELOOP",
    );
  }),
);
