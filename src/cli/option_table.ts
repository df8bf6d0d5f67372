/**
 * The options `filelock` takes, as getopt_long tables: flock(1)'s long
 * options (util-linux), filelock's own, the short letters, and how a long
 * option (or an abbreviation of one) is looked up. Pure data and lookup.
 *
 * @module
 */

import { UsageError } from "./usage.ts";

/** One long option: its name, whether it takes a value, and the short letter (or key) it stands for. */
export interface LongOption {
  readonly name: string;
  readonly value: boolean;
  readonly key: string;
}

/** flock(1)'s long options (util-linux), which abbreviations resolve among first. */
const FLOCK_OPTIONS: readonly LongOption[] = [
  { name: "shared", value: false, key: "s" },
  { name: "exclusive", value: false, key: "x" },
  { name: "unlock", value: false, key: "u" },
  // --nonblock, the spelling flock(1)'s manual uses, is an abbreviation of --nonblocking.
  { name: "nonblocking", value: false, key: "n" },
  { name: "nb", value: false, key: "n" },
  { name: "timeout", value: true, key: "w" },
  { name: "wait", value: true, key: "w" },
  { name: "conflict-exit-code", value: true, key: "E" },
  { name: "close", value: false, key: "o" },
  { name: "no-fork", value: false, key: "F" },
  { name: "verbose", value: false, key: "v" },
  { name: "help", value: false, key: "h" },
  { name: "version", value: false, key: "V" },
];

/** filelock's own long options. */
const OWN_OPTIONS: readonly LongOption[] = [
  { name: "status", value: false, key: "status" },
  { name: "probe", value: false, key: "probe" },
  { name: "backend", value: true, key: "backend" },
  { name: "remove", value: false, key: "remove" },
];

/** Short options, and whether each takes a value. */
export const SHORT: Readonly<Record<string, boolean>> = {
  s: false,
  x: false,
  e: false,
  u: false,
  n: false,
  o: false,
  F: false,
  v: false,
  h: false,
  V: false,
  w: true,
  E: true,
};

/**
 * The long option `name` stands for: an exact name, else the first option
 * its prefix matches, looking among flock(1)'s options before filelock's own
 * (so that every abbreviation flock(1) takes means the same). As in glibc's
 * getopt_long, a prefix is ambiguous when a later match stands for something
 * else than the first one (another key, or a value where it takes none), and
 * the message lists the first match and those others only: `--n` names
 * `--nonblocking` and `--no-fork`, not `--nb`, which is `--nonblocking` again.
 */
export function longOption(name: string, written: string): LongOption {
  for (const table of [FLOCK_OPTIONS, OWN_OPTIONS]) {
    const exact = table.find((option) => option.name === name);
    if (exact) return exact;
  }
  for (const table of [FLOCK_OPTIONS, OWN_OPTIONS]) {
    const matches = table.filter((option) => option.name.startsWith(name));
    if (matches.length === 0) continue;
    const [first] = matches;
    const listed = matches.filter((option) =>
      option === first || option.key !== first.key || option.value !== first.value
    );
    if (listed.length === 1) return first;
    throw new UsageError(
      `option '${written}' is ambiguous; possibilities: ${
        listed.map((option) => `'--${option.name}'`).join(" ")
      }`,
    );
  }
  throw new UsageError(`unrecognized option '${written}'`);
}
