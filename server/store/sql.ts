// The one way the server talks to its database, whichever it is: SQLite (the
// embedded default, better-sqlite3) or PostgreSQL (server/store/sql-pg.ts, pg).
//
// Statements are written once, in the SQL both understand, with `?` placeholders
// (the PostgreSQL side numbers them). What differs is kept out of the statements:
// inserts that need the new id say `RETURNING id` (both have it), conflicts are
// `ON CONFLICT ... DO NOTHING/UPDATE` (both), integers come back as JS numbers on
// both (the PostgreSQL side parses int8 and numeric), blobs as Buffers.
//
// Transactions follow the caller, not a handle: inside `sql.tx(fn)` every statement
// made through this Sql (by any store object built on it) joins that transaction,
// found through AsyncLocalStorage. So a unit of work is
//   await sql.tx(async () => { await posts.add(...); await queue.add(...); })
// and the stores need no transaction-bound copies of themselves. Keep awaits
// inside a transaction to statements: the SQLite side holds its one connection
// for the whole of it (every other statement waits), the PostgreSQL side one
// pooled client.

import { AsyncLocalStorage } from 'node:async_hooks';
import type Database from 'better-sqlite3';

export type SqlParam = string | number | bigint | boolean | null | Buffer | Uint8Array;
export type SqlRow = Record<string, unknown>;

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

export interface Sql {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = SqlRow>(text: string, params?: readonly SqlParam[]): Promise<T[]>;
  get<T = SqlRow>(text: string, params?: readonly SqlParam[]): Promise<T | undefined>;
  run(text: string, params?: readonly SqlParam[]): Promise<RunResult>;
  /** Several statements without parameters (schema steps). */
  exec(text: string): Promise<void>;
  /**
   * fn's statements commit together, or none does when fn throws (the error is
   * rethrown). Nested calls are savepoints: an inner failure caught by the outer
   * fn undoes only the inner part.
   */
  tx<T>(fn: () => Promise<T>): Promise<T>;
  /** True when called inside tx (some checks are only meaningful there). */
  inTx(): boolean;
  close(): Promise<void>;
}

/** The database refusing a write for a reason outside the data (disk full, I/O, busy, read-only, connection lost): worth retrying. */
export function isStorageError(e: unknown): boolean {
  const c = (e as { code?: unknown } | null)?.code;
  if (typeof c !== 'string') return false;
  if (/^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN|NOMEM|PROTOCOL)/.test(c)) return true;
  // PostgreSQL SQLSTATE classes: 08 connection, 53 insufficient resources (disk full 53100),
  // 57P0x shutdown/cannot connect now, 58 system (I/O), 40001/40P01 serialization/deadlock.
  // Node's own socket errors when the server is unreachable.
  return /^(08...|53...|57P0[1-4]|58...|40001|40P01|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)$/.test(c);
}

interface SqliteTx {
  depth: number;
}

/**
 * better-sqlite3 behind the async Sql. Statements run synchronously (they are
 * microseconds), in the caller's turn; a transaction takes the connection for
 * its whole length, so a statement from elsewhere waits for its end instead of
 * landing inside it.
 */
export class SqliteSql implements Sql {
  readonly dialect = 'sqlite' as const;
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly txs = new AsyncLocalStorage<SqliteTx>();
  /** The transaction holding the connection, and who waits for it. */
  private holder: SqliteTx | null = null;
  private readonly waiting: Array<() => void> = [];
  private savepoints = 0;

  constructor(readonly db: Database.Database) {}

  private stmt(text: string): Database.Statement {
    let s = this.stmts.get(text);
    if (!s) {
      s = this.db.prepare(text);
      // Bounded: statements are the program's own constants, but a cache must not grow without end.
      if (this.stmts.size >= 1000) this.stmts.clear();
      this.stmts.set(text, s);
    }
    return s;
  }

  /** Runs f now if the connection is free or ours, else after the transaction holding it ends. */
  private when<T>(f: () => T): Promise<T> {
    // The connection free (the usual case): no AsyncLocalStorage lookup, it costs on hot paths.
    if (this.holder === null || this.txs.getStore() === this.holder) {
      try {
        return Promise.resolve(f());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => this.when(f));
  }

  private release(): void {
    this.holder = null;
    // Wake everyone: the first to run a statement may start the next transaction; the rest re-check.
    const w = this.waiting.splice(0);
    for (const r of w) r();
  }

  all<T = SqlRow>(text: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.when(() => this.stmt(text).all(...toSqlite(params)) as T[]);
  }

  get<T = SqlRow>(text: string, params: readonly SqlParam[] = []): Promise<T | undefined> {
    return this.when(() => this.stmt(text).get(...toSqlite(params)) as T | undefined);
  }

  run(text: string, params: readonly SqlParam[] = []): Promise<RunResult> {
    return this.when(() => {
      const s = this.stmt(text);
      // A statement with RETURNING must be stepped with all/get; run() would refuse it.
      if (s.reader) return { changes: (s.all(...toSqlite(params)) as unknown[]).length };
      return { changes: s.run(...toSqlite(params)).changes };
    });
  }

  exec(text: string): Promise<void> {
    return this.when(() => { this.db.exec(text); });
  }

  inTx(): boolean {
    const mine = this.txs.getStore();
    return mine !== undefined && mine === this.holder;
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    const mine = this.txs.getStore();
    if (mine !== undefined && mine === this.holder) {
      // Nested: a savepoint inside the transaction this call already holds.
      const name = `sp${++this.savepoints}`;
      this.db.exec(`SAVEPOINT ${name}`);
      try {
        const out = await fn();
        this.db.exec(`RELEASE ${name}`);
        return out;
      } catch (e) {
        this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
        throw e;
      }
    }
    while (this.holder !== null) await new Promise<void>((resolve) => this.waiting.push(resolve));
    const t: SqliteTx = { depth: 0 };
    this.holder = t;
    try {
      // IMMEDIATE: take the write lock now, so two processes on one file queue at BEGIN
      // (busy_timeout) instead of failing at their first write.
      this.db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      this.release();
      throw e;
    }
    try {
      const out = await this.txs.run(t, fn);
      this.db.exec('COMMIT');
      return out;
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    } finally {
      this.release();
    }
  }

  /**
   * Waits up to waitMs for a running transaction to end, then closes anyway: a stop
   * must not hang on a transaction that never ends (its next statement then fails,
   * and SQLite rolls back what it had not committed).
   */
  async close(waitMs = 10_000): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (this.holder !== null && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiting.push(() => { clearTimeout(t); resolve(); });
      });
    }
    this.stmts.clear();
    if (this.db.open) this.db.close();
  }
}

function toSqlite(params: readonly SqlParam[]): unknown[] {
  // better-sqlite3 binds Buffers but not other Uint8Arrays, and no booleans.
  return params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
}
