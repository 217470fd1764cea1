// The better-sqlite3 handle under a SQLite Sql, for tests that read or arrange
// rows directly (SQLite only: such a test does not run on PostgreSQL).

import type Database from 'better-sqlite3';
import { SqliteSql, type Sql } from '../../server/store/sql.ts';

export function rawDb(sql: Sql): Database.Database {
  if (!(sql instanceof SqliteSql)) throw new Error('this test reads the SQLite file directly');
  return sql.db;
}
