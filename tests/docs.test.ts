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
