// Shared pieces of the PostgreSQL tests: one throwaway server per test file,
// tests registered as skipped (with the reason printed) where none can be
// started, the clients (the `postgres` npm package everywhere, Bun.sql in
// Bun), and what the server shows about sessions and advisory locks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { type Client, type ClientKind, connect } from "./clients.ts";
import { dead, runtimeName } from "../helpers.ts";
import { type PgServer, startPostgres } from "./server.ts";

/** The clients this runtime has: Bun.sql only in Bun. */
export const CLIENTS: readonly ClientKind[] = runtimeName === "bun"
  ? ["porsager", "bunsql"]
  : ["porsager"];

/** The suite's server: started once per test file, or the reason why not. */
export interface Suite {
  readonly server: PgServer | undefined;
  /** Why the tests are skipped, or `undefined`. */
  readonly skip: string | undefined;
  /** `postgres://…` of the server (throws when skipped). */
  readonly url: string;
  /** A client of the suite for inspecting the server (max 2 connections). */
  readonly spy: Client;
}

/**
 * Starts the file's server. Where none can be started, prints
 * `SKIP <what>: <reason>` and every test of the file registers as skipped.
 */
export async function suite(what: string): Promise<Suite> {
  const started = await startPostgres();
  if ("reason" in started) {
    console.log(`SKIP ${what}: ${started.reason}`);
    const fail = (): never => {
      throw new Error(started.reason);
    };
    return {
      server: undefined,
      skip: started.reason,
      get url(): string {
        return fail();
      },
      get spy(): Client {
        return fail();
      },
    };
  }
  return {
    server: started,
    skip: undefined,
    url: started.url,
    spy: connect("porsager", started.url, 2, "lockkit-spy"),
  };
}

/** In CI (`CI` set, as `.ci/run` runs) a missing server fails the tests instead of skipping them. */
const inCI = (process.env.CI ?? "") !== "" && process.env.CI !== "false";

/**
 * Registers a test of the suite: skipped with the reason when there is no
 * server, failed with it in CI.
 */
export function pgTest(s: Suite, name: string, fn: () => Promise<void>): void {
  const title = `${runtimeName}: postgres: ${name}`;
  if (s.skip !== undefined && inCI) {
    test(title, () => {
      throw new Error(`no PostgreSQL in CI: ${s.skip}`);
    });
  } else {
    test(title, { skip: s.skip }, fn);
  }
}

/**
 * The file's last test: closes the spy, stops the server and checks that it
 * is gone (no postmaster, no directory).
 */
export function stopTest(s: Suite, closers: Array<() => Promise<void>> = []): void {
  pgTest(s, "the server stops and leaves no process or directory behind", async () => {
    const server = s.server!;
    for (const close of closers) await close();
    await s.spy.end();
    const pid = server.pid();
    server.stop();
    assert.equal(existsSync(server.dir), false, "the data directory is removed");
    await dead(pid); // gone, or a zombie waiting for its parent to reap it
  });
}

/**
 * Client sessions on the server other than the spy's, with their state (not
 * those still starting or already ending, which have none).
 */
export async function sessions(spy: Client): Promise<{ pid: number; state: string }[]> {
  const rows = await spy.query(
    "SELECT pid, state FROM pg_stat_activity WHERE backend_type = 'client backend' " +
      "AND state IS NOT NULL AND application_name <> 'lockkit-spy' ORDER BY pid",
  );
  return rows.map((r) => ({ pid: Number(r.pid), state: String(r.state) }));
}

/** Advisory locks on the server: granted and waiting. */
export async function advisoryLocks(
  spy: Client,
): Promise<{ pid: number; mode: string; granted: boolean }[]> {
  const rows = await spy.query(
    "SELECT pid, mode, granted FROM pg_locks WHERE locktype = 'advisory' ORDER BY pid",
  );
  return rows.map((r) => ({
    pid: Number(r.pid),
    mode: String(r.mode),
    granted: r.granted === true,
  }));
}

/** Sessions waiting for an advisory lock in the server. */
export async function waiters(spy: Client): Promise<number> {
  const rows = await spy.query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' " +
      "AND wait_event = 'advisory'",
  );
  return Number(rows[0].n);
}

/** Polls `predicate` every 10 ms until it holds; throws after `ms` (a hang guard). */
export async function until(
  predicate: () => Promise<boolean> | boolean,
  what: string,
  ms = 10_000,
): Promise<void> {
  const limit = performance.now() + ms;
  while (!(await predicate())) {
    if (performance.now() > limit) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

export { type Client, type ClientKind, connect };
