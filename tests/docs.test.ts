// Limits that no code can remove are said where users look (issue 13): the
// README's guarantees and the option's own documentation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, runtimeName } from "./helpers.ts";

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const types = readFileSync(join(repoRoot, "src", "types.ts"), "utf8");

/** The JSDoc comment right before `name` in src/types.ts. */
function jsdocOf(name: string): string {
  const at = types.indexOf(`  ${name}?:`);
  assert.ok(at > 0, name);
  const start = types.lastIndexOf("/**", at);
  return types.slice(start, at);
}

test(`${runtimeName}: docs: removeOnRelease says what happens next to flock(1) or Python, and what to do`, () => {
  const doc = jsdocOf("removeOnRelease");
  assert.match(doc, /flock\(1\)/);
  assert.match(doc, /Python/);
  assert.match(doc, /both hold/);
  assert.match(doc, /keep the\s+\*?\s*file/);
  const guarantees = readme.slice(readme.indexOf("## Guarantees"), readme.indexOf("## Errors"));
  assert.match(guarantees, /`removeOnRelease` next to a waiter that does not use this module/);
});

test(`${runtimeName}: docs: the guarantees list what holds and what does not`, () => {
  const guarantees = readme.slice(readme.indexOf("## Guarantees"), readme.indexOf("## Errors"));
  for (
    const needle of [
      "**What holds**",
      "**What does not hold**",
      "not reentrant",
      "dropped without release",
      "Worker that is terminated",
      "allowForeignOwner",
      "sticky world-writable",
    ]
  ) {
    assert.ok(guarantees.includes(needle), needle);
  }
  assert.match(jsdocOf("allowForeignOwner"), /sticky world-writable/);
  assert.match(types, /not reentrant/);
  assert.match(types, /terminated Worker/);
});

/** The README section that starts with `heading`, up to the next heading of its level or above. */
function section(heading: string): string {
  const start = readme.indexOf(`${heading}\n`);
  assert.ok(start >= 0, heading);
  const level = heading.indexOf(" ");
  const rest = readme.slice(start + heading.length);
  const end = rest.search(new RegExp(`\\n#{1,${level}} `));
  return end < 0 ? rest : rest.slice(0, end);
}

test(`${runtimeName}: docs: acquireSync says what a signal does, EDEADLK, and the kernel wait`, () => {
  const mod = readFileSync(join(repoRoot, "mod.ts"), "utf8");
  const at = mod.indexOf("export function acquireSync(");
  const doc = mod.slice(mod.lastIndexOf("/**", at), at);
  assert.doesNotMatch(doc, /abort is noticed/);
  for (const needle of [/already-aborted signal throws its reason/, /TypeError/, /`timeout`/]) {
    assert.match(doc, needle);
  }
  assert.match(doc, /EDEADLK/);
  assert.match(doc, /in the kernel/);
  const api = section("## API");
  assert.doesNotMatch(api, /without timeout\/signal/);
  assert.match(api, /acquireSync\(.*\/\/.*in the kernel without timeout.*EDEADLK.*TypeError/);
});

test(`${runtimeName}: docs: Deno that cannot tell its PID namespace is a stated limit, with its fixes`, () => {
  const pidfile = section("## Degraded mode: `pidfile`");
  const notGuaranteed = pidfile.slice(pidfile.indexOf("**What it does not guarantee:**"));
  assert.match(notGuaranteed, /cannot tell its own PID namespace/);
  for (const flag of ["--allow-all", "--allow-ffi", "staleMs"]) {
    assert.ok(notGuaranteed.includes(flag), flag);
  }
  assert.match(pidfile, /detected at the next poll of a process that can judge its PID/);
  const guarantees = section("## Guarantees");
  assert.match(
    guarantees,
    /Deno\s+without `--allow-all` or `--allow-ffi` cannot tell its PID namespace/,
  );
  assert.match(section("### Deno permissions"), /--allow-sys=uid/);
});
