// The two clients the PostgreSQL tests and workers use: the `postgres` npm
// package (porsager/postgres) in every runtime, and Bun.sql in Bun.
import postgres from "postgres";
import type { PostgresClient } from "../../src/postgres/mod.ts";

/** Which client a test or worker uses. */
export type ClientKind = "porsager" | "bunsql";

/** A client and how to close it. */
export interface Client {
  readonly sql: PostgresClient;
  /** For the queries the tests and workers make themselves. */
  query(text: string, params?: string[]): Promise<Record<string, unknown>[]>;
  end(): Promise<void>;
}

interface BunSqlClient extends PostgresClient {
  close(options?: { timeout?: number }): Promise<void>;
}

/** A pool of `max` connections to `url`. */
export function connect(kind: ClientKind, url: string, max = 10, application?: string): Client {
  if (kind === "bunsql") {
    const Bun =
      (globalThis as { Bun?: { SQL: new (url: string, options: object) => BunSqlClient } })
        .Bun;
    if (Bun === undefined) throw new Error("Bun.sql exists only in Bun");
    const sql = new Bun.SQL(url, { max });
    return {
      sql,
      query: async (text, params) =>
        [...(await sql.unsafe(text, params))] as Record<string, unknown>[],
      end: () => sql.close({ timeout: 1 }),
    };
  }
  const sql = postgres(url, {
    max,
    onnotice: () => {},
    ...(application === undefined ? {} : { connection: { application_name: application } }),
  });
  return {
    sql,
    query: async (text, params) => [...(await sql.unsafe(text, params))],
    end: () => sql.end({ timeout: 1 }),
  };
}
