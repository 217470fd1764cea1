// The SQLite database of one data folder: schema and connection settings.
// Only ciphertext, wrapped keys, addresses, public keys and metadata live here;
// no column ever holds a post's plaintext (DESIGN.md, rule 1).

import Database from 'better-sqlite3';
import { migrate } from './migrations.ts';

export type Db = Database.Database;

/** SQLite refusing a write for a reason outside the data (disk full, I/O, busy, read-only): worth retrying. */
export function isStorageError(e: unknown): boolean {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN|NOMEM|PROTOCOL)/.test(c);
}

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

export function getMeta(db: Db, key: string): string | null {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value ?? null;
}

export function setMeta(db: Db, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}
