// Both stores for a test file: SQLite on a temporary file and PostgreSQL on a real
// server (test/support/postgres.ts), each opened through openDatabase (migrated),
// so a store test runs against both with
//   const stores = storeBackends();
//   describe.each(stores.list)('on $name', ({ open }) => { ... await open() ... });
// Call it at the top level of the file: it registers the afterAll that closes
// what was opened and stops the server. The PostgreSQL server starts at the first
// open() on it (once per file), so a file that only reaches SQLite pays nothing.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openDatabase } from '../../server/store/open.ts';
import type { Sql } from '../../server/store/sql.ts';
import { startPostgres, type RunningPostgres } from './postgres.ts';

export interface StoreBackend {
  name: 'sqlite' | 'postgres';
  /** A fresh, migrated, empty database of this kind. */
  open(): Promise<Sql>;
}

export interface Stores {
  list: StoreBackend[];
  /** The file's PostgreSQL (started on first use). */
  postgres(): Promise<RunningPostgres>;
  /** Closed after the file, with the rest (for a Sql the test opened itself). */
  track<T extends Sql>(sql: T): T;
}

export function storeBackends(): Stores {
  let dir: string | null = null;
  let server: Promise<RunningPostgres> | null = null;
  let files = 0;
  const opened: Sql[] = [];
  const postgres = () => (server ??= startPostgres());
  afterAll(async () => {
    // The server first: it ends every connection, so no pool waits on a transaction a failed test left open.
    if (server) await (await server.catch(() => null))?.stop();
    await Promise.all(opened.map((s) => Promise.race([s.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())])));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);
  const keep = <T extends Sql>(s: T): T => { opened.push(s); return s; };
  return {
    postgres,
    track: keep,
    list: [
      {
        name: 'sqlite',
        open: async () => {
          dir ??= mkdtempSync(join(tmpdir(), 'letterlock-stores-'));
          return keep(await openDatabase(join(dir, `db${++files}.sqlite`)));
        },
      },
      { name: 'postgres', open: async () => keep(await openDatabase(await (await postgres()).createDatabase())) },
    ],
  };
}

/** The error p rejects with; the test fails when p resolves instead. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
