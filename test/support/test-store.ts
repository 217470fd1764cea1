// Which store the server suite runs on: SQLite by default, PostgreSQL with
// LETTERLOCK_TEST_STORE=postgres (npm test runs the server suite both ways).
// On PostgreSQL each test file gets one real server (test/support/postgres.ts),
// started on first use and stopped when the file's process exits (pool: forks),
// and each data folder or store its own fresh database.

import { openDatabase } from '../../server/store/open.ts';
import type { Sql } from '../../server/store/sql.ts';
import { startPostgres, type RunningPostgres } from './postgres.ts';

export const TEST_STORE: 'sqlite' | 'postgres' = process.env.LETTERLOCK_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
export const onPostgres = TEST_STORE === 'postgres';

let server: Promise<RunningPostgres> | null = null;

/** The file's PostgreSQL (started on first call). */
export function testPostgres(): Promise<RunningPostgres> {
  return (server ??= startPostgres());
}

/** A fresh database URL on PostgreSQL; undefined on SQLite (the folder's own file). */
export async function testDatabase(): Promise<string | undefined> {
  return onPostgres ? (await testPostgres()).createDatabase() : undefined;
}

/** The `database` config entry for a new data folder ({} on SQLite). */
export async function testDatabaseConfig(): Promise<{ database?: string }> {
  const d = await testDatabase();
  return d ? { database: d } : {};
}

/** `--database URL` for `letterlock init` ([] on SQLite). */
export async function testDatabaseArgs(): Promise<string[]> {
  const d = await testDatabase();
  return d ? ['--database', d] : [];
}

/** A migrated store for a unit test: the SQLite file at `file`, or a fresh PostgreSQL database. */
export async function openTestSql(file: string): Promise<Sql> {
  return openDatabase((await testDatabase()) ?? file);
}
