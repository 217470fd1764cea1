// Opens the database a configuration names: a SQLite file path (the embedded
// default) or a postgres:// / postgresql:// URL. Either way the Sql comes back
// migrated to this Letterlock's schema; a database from a newer one is refused
// (SchemaError).

import { openSqlite } from './db.ts';
import { migratePg } from './migrations-pg.ts';
import { PgSql, type PgOptions } from './sql-pg.ts';
import type { Sql } from './sql.ts';

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

export async function openDatabase(spec: string, pgOptions: PgOptions = {}): Promise<Sql> {
  if (isPostgresUrl(spec)) {
    const sql = new PgSql(spec, pgOptions);
    try {
      await migratePg(sql);
    } catch (e) {
      await sql.close().catch(() => {});
      throw e;
    }
    return sql;
  }
  // openDb migrates the SQLite file (migrations.ts) and closes it again on failure.
  return openSqlite(spec);
}
