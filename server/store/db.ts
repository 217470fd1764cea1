// The SQLite database of one data folder: schema and connection settings.
// Only ciphertext, wrapped keys, addresses, public keys and metadata live here;
// no column ever holds a post's plaintext (DESIGN.md, rule 1).

import Database from 'better-sqlite3';
import { migrate } from './migrations.ts';
import { SqliteSql, type Sql } from './sql.ts';

export { isStorageError } from './sql.ts';
export type { Sql } from './sql.ts';

/** The raw better-sqlite3 handle: only the migrations and the SQLite-only backup use it. */
export type Db = Database.Database;

/** Opens and migrates the SQLite file (raw handle). The app goes through openSqlite. */
export function openDb(path: string): Db {
  const db = new Database(path);
  // WAL + synchronous=NORMAL: a commit survives a killed process (the crash the
  // queue must survive) without an fsync per delivered copy.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // The schema is the ordered list of steps in migrations.ts; a folder from a
  // newer Letterlock is refused there (SchemaError).
  try {
    migrate(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/** The one place the app opens its SQLite database: opened, migrated, behind the async Sql. */
export function openSqlite(path: string): SqliteSql {
  return new SqliteSql(openDb(path));
}

export async function getMeta(sql: Sql, key: string): Promise<string | null> {
  const row = await sql.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key]);
  return row?.value ?? null;
}

export async function setMeta(sql: Sql, key: string, value: string): Promise<void> {
  await sql.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
}

/**
 * One trivial query, for the health check: ok, or the database's own error code
 * (SQLITE_* or a PostgreSQL SQLSTATE), DB_CLOSED for a closed handle, else DB_ERROR.
 */
export async function pingDatabase(sql: Sql): Promise<{ ok: true } | { ok: false; code: string }> {
  try {
    await sql.get('SELECT 1 AS one');
    return { ok: true };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(SQLITE_[A-Z_]+|[0-9A-Z]{5})$/.test(code)) return { ok: false, code };
    // better-sqlite3 on a closed handle: "The database connection is not open"; pg: "Client was closed" / pool ended.
    return { ok: false, code: /not open|closed|ended/i.test(String((e as Error)?.message)) ? 'DB_CLOSED' : 'DB_ERROR' };
  }
}
