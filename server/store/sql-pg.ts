// PostgreSQL behind the async Sql (server/store/sql.ts), on a pg Pool.
//
// The statements are the ones SQLite runs: `?` placeholders (numbered here),
// integers back as JS numbers (int8 and numeric parsed on this pool only, and
// refused past 2^53 rather than rounded), booleans as 1/0 both ways (the schema
// keeps SQLite's INTEGER flags), blobs as Buffers (bytea).
//
// A transaction is one pooled client from BEGIN to COMMIT; every statement made
// through this PgSql in fn's async flow uses it (AsyncLocalStorage), any other
// statement takes another connection and does not see it until it commits.
//
// Errors keep PostgreSQL's SQLSTATE in .code (isStorageError classifies it) and
// the names of the constraint, table and column; never the statement's values:
// the server's DETAIL ("Key (address)=(...) already exists") is dropped, and the
// quoted values in data errors ("invalid input syntax for type bigint: "...")
// are cut out.

import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import type { RunResult, Sql, SqlParam, SqlRow } from './sql.ts';

export interface PgOptions {
  /** Most connections this node opens (default 10, or `max` in the URL). */
  max?: number;
  /** A statement running longer is cancelled by the server (SQLSTATE 57014). Default 30 s. */
  statementTimeoutMs?: number;
  /** Giving up on connecting (and on waiting for a free pooled connection). Default 10 s. */
  connectTimeoutMs?: number;
  /** A transaction left idle this long is ended by the server, freeing its locks. Default 60 s. */
  idleInTransactionTimeoutMs?: number;
}

/** Parameters this module reads from the URL (and removes before pg sees it). */
const URL_OPTIONS = { max: 'max', statement_timeout: 'statementTimeoutMs', connect_timeout: 'connectTimeoutMs' } as const;

/** An error from PostgreSQL or the connection to it, without the values of the statement. */
export class PgError extends Error {
  override name = 'PgError';
  /** SQLSTATE (e.g. 23505), or Node's socket code (ECONNREFUSED). */
  readonly code: string | undefined;
  readonly constraint: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  constructor(message: string, fields: { code?: string | undefined; constraint?: string | undefined; table?: string | undefined; column?: string | undefined }) {
    super(message);
    this.code = fields.code;
    this.constraint = fields.constraint;
    this.table = fields.table;
    this.column = fields.column;
  }
}

interface PgTx {
  client: pg.PoolClient;
  /** Ended: statements from a flow that outlived fn go to the pool. */
  done: boolean;
  /** The connection failed: destroy it instead of returning it to the pool. */
  broken: boolean;
  savepoints: number;
  /** longTx: the client's guard for each statement (the server's is set with SET LOCAL). */
  queryTimeoutMs?: number;
}

const CACHE_MAX = 1000;

/** `?` -> `$1..$n` outside string literals, quoted identifiers, dollar quotes and comments. */
export function numberPlaceholders(text: string): { text: string; count: number } {
  let out = '';
  let n = 0;
  let i = 0;
  const len = text.length;
  while (i < len) {
    const c = text[i]!;
    if (c === '?') {
      out += `$${++n}`;
      i++;
    } else if (c === "'" || c === '"') {
      // '...' with '' inside, "..." with "" inside; E'...' also takes backslash escapes.
      const backslash = c === "'" && i > 0 && /[eE]/.test(text[i - 1]!) && (i < 2 || !/[\w$]/.test(text[i - 2]!));
      let j = i + 1;
      while (j < len) {
        if (backslash && text[j] === '\\') j += 2;
        else if (text[j] === c) {
          if (text[j + 1] === c) j += 2;
          else break;
        } else j++;
      }
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' && text[i + 1] === '-') {
      const j = text.indexOf('\n', i);
      const end = j < 0 ? len : j;
      out += text.slice(i, end);
      i = end;
    } else if (c === '/' && text[i + 1] === '*') {
      // Block comments nest in PostgreSQL.
      let depth = 1;
      let j = i + 2;
      while (j < len && depth > 0) {
        if (text[j] === '/' && text[j + 1] === '*') { depth++; j += 2; }
        else if (text[j] === '*' && text[j + 1] === '/') { depth--; j += 2; }
        else j++;
      }
      out += text.slice(i, j);
      i = j;
    } else if (c === '$' && (i === 0 || !/[\w$]/.test(text[i - 1]!))) {
      const m = /^\$([A-Za-z_][\w]*)?\$/.exec(text.slice(i, i + 64));
      if (m) {
        const tag = m[0];
        const j = text.indexOf(tag, i + tag.length);
        const end = j < 0 ? len : j + tag.length;
        out += text.slice(i, end);
        i = end;
      } else {
        out += c;
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return { text: out, count: n };
}

/** Integers past 2^53 are refused: a wrong id or timestamp is worse than an error. */
function safeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) {
    // 22003 numeric_value_out_of_range, as PostgreSQL says it; the value is not repeated.
    throw new PgError('a number from the database is beyond what a JS number holds exactly (2^53)', { code: '22003' });
  }
  return n;
}

const INT8 = 20;
const NUMERIC = 1700;
const BOOL = 16;

/** This pool's parsers (pg.types, process-wide, is left alone). */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (format === undefined || format === 'text') {
      if (oid === INT8 || oid === NUMERIC) return safeNumber;
      if (oid === BOOL) return (v: string) => (v === 't' ? 1 : 0);
    }
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as unknown as pg.CustomTypesConfig;

function toPg(params: readonly SqlParam[]): unknown[] {
  return params.map((p) => {
    if (typeof p === 'boolean') return p ? 1 : 0;
    if (typeof p === 'bigint') {
      // Sent as its decimal text, exactly.
      return p.toString();
    }
    if (p instanceof Uint8Array && !Buffer.isBuffer(p)) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    return p;
  });
}

/** A query with the client's guard lifted for a long transaction (pg reads query_timeout per query; its types omit it). */
function config(text: string, values: unknown[] | undefined, queryTimeoutMs: number | undefined): pg.QueryConfig {
  const c: pg.QueryConfig & { query_timeout?: number } = values ? { text, values } : { text };
  if (queryTimeoutMs !== undefined) c.query_timeout = queryTimeoutMs;
  return c;
}

/** Messages of errors pg raises itself, without a SQLSTATE: all mean the connection is gone or was never had. */
const CONNECTION_LOST = /^(Connection terminated|Client has encountered a connection error|Client was closed|Query read timeout|timeout exceeded when trying to connect|Connection terminated due to connection timeout)/;

/** The error without values: SQLSTATE and names kept, DETAIL, WHERE and the statement dropped. */
export function cleanError(e: unknown): unknown {
  if (e instanceof PgError) return e;
  if (!(e instanceof Error)) return e;
  const x = e as Error & { code?: unknown; severity?: unknown; constraint?: string; table?: string; column?: string };
  let code = typeof x.code === 'string' ? x.code : undefined;
  let message = x.message;
  if (typeof x.severity === 'string') {
    // From the server. Data errors (class 22) quote the offending value: cut out.
    // (`value "..." is out of range`, `invalid input syntax for type bigint: "..."`,
    // `invalid byte sequence for encoding "UTF8": 0x00`): quoted parts and what follows a colon go.
    if (code?.startsWith('22')) message = message.replace(/"(?:[^"]|"")*"/g, '"…"').replace(/: (?!"…"$).*$/s, ': …');
    message = `PostgreSQL ${code ?? ''}: ${message}`;
  } else if (code === undefined && CONNECTION_LOST.test(message)) {
    // pg's own connection failures carry no code: 08006 connection_failure, 08001 cannot connect.
    code = /trying to connect|due to connection timeout/.test(message) ? '08001' : '08006';
    message = `PostgreSQL connection: ${message}`;
  } else if (code === undefined) {
    return e;
  } else {
    message = `PostgreSQL: ${message}`;
  }
  return new PgError(message, { code, constraint: x.constraint, table: x.table, column: x.column });
}

/** The connection cannot be trusted after this error: destroy the client rather than pool it. */
function breaksConnection(e: unknown): boolean {
  if (e instanceof PgError) return false; // ours (a number past 2^53): the connection read on to the end
  const x = e as { code?: unknown; severity?: unknown };
  if (typeof x?.severity === 'string') return typeof x.code === 'string' && /^(08|57P)/.test(x.code);
  return true;
}

function parseSpec(url: string, opts: PgOptions): { connectionString: string; opts: PgOptions } {
  // Only the query string is read here; the rest (user, password, host or socket
  // folder, database, sslmode) is pg's to parse, in every form it accepts
  // (postgres://user@/db?host=/run/postgresql has no host WHATWG URL would take).
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const o: PgOptions = { ...opts };
  for (const [param, key] of Object.entries(URL_OPTIONS)) {
    const v = params.get(param);
    if (v === null) continue;
    params.delete(param);
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 86_400_000) throw new PgError(`the database URL's ${param} must be a whole number`, { code: 'EINVAL' });
    if (o[key] !== undefined) continue; // an explicit option wins
    // libpq's connect_timeout is in seconds; statement_timeout is PostgreSQL's setting, in ms.
    o[key] = param === 'connect_timeout' ? n * 1000 : n;
  }
  if (o.max !== undefined && (o.max < 1 || o.max > 1000)) throw new PgError('the database pool size (max) must be between 1 and 1000', { code: 'EINVAL' });
  const rest = params.toString();
  const connectionString = (q < 0 ? url : url.slice(0, q)) + (rest ? `?${rest}` : '');
  try {
    // Parsed now, not at the first connection; the URL may hold a password, so pg's message (which may quote it) is not passed on.
    new pg.Client({ connectionString });
  } catch {
    throw new PgError('the database URL is not a valid postgres:// URL', { code: 'EINVAL' });
  }
  return { connectionString, opts: o };
}

export class PgSql implements Sql {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly txs = new AsyncLocalStorage<PgTx>();
  private readonly texts = new Map<string, { text: string; count: number }>();
  private closed = false;

  constructor(url: string, options: PgOptions = {}) {
    const { connectionString, opts } = parseSpec(url, options);
    const statementTimeout = opts.statementTimeoutMs ?? 30_000;
    this.pool = new pg.Pool({
      connectionString,
      max: opts.max ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      // Set on the server at connection start: it cancels the statement and the session lives on.
      statement_timeout: statementTimeout,
      idle_in_transaction_session_timeout: opts.idleInTransactionTimeoutMs ?? 60_000,
      // The client's own guard for a server that stopped answering altogether (no cancel arrives).
      query_timeout: statementTimeout > 0 ? statementTimeout + 10_000 : undefined,
      idleTimeoutMillis: 30_000,
      types: TYPES,
      application_name: 'letterlock',
    } as pg.PoolConfig);
    // An idle pooled connection that fails (server restart) is dropped by the pool;
    // without a listener that 'error' event would end the process.
    this.pool.on('error', () => {});
  }

  private prepare(text: string, params: readonly SqlParam[]): string {
    let t = this.texts.get(text);
    if (!t) {
      t = numberPlaceholders(text);
      // Bounded: statements are the program's own constants, but a cache must not grow without end.
      if (this.texts.size >= CACHE_MAX) this.texts.clear();
      this.texts.set(text, t);
    }
    // Checked here: PostgreSQL answers a wrong count with 08P01 (protocol violation),
    // which would read as a lost connection.
    if (t.count !== params.length) throw new PgError(`the statement has ${t.count} placeholders and was given ${params.length} values`, { code: 'SQL_PARAMS' });
    return t.text;
  }

  private current(): PgTx | undefined {
    const t = this.txs.getStore();
    return t !== undefined && !t.done ? t : undefined;
  }

  private async query(text: string, params: readonly SqlParam[]): Promise<pg.QueryResult> {
    // As better-sqlite3 says it ("not open"), rather than pg's "Cannot use a pool after calling end"
    // (pingDatabase reports DB_CLOSED for either).
    if (this.closed) throw new Error('the database connection is closed');
    const q = this.prepare(text, params);
    const values = toPg(params);
    const t = this.current();
    try {
      if (t) return await t.client.query(config(q, values, t.queryTimeoutMs));
      return await this.pool.query(q, values);
    } catch (e) {
      if (t && breaksConnection(e)) t.broken = true;
      throw cleanError(e);
    }
  }

  async all<T = SqlRow>(text: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return (await this.query(text, params)).rows as T[];
  }

  async get<T = SqlRow>(text: string, params: readonly SqlParam[] = []): Promise<T | undefined> {
    return (await this.query(text, params)).rows[0] as T | undefined;
  }

  async run(text: string, params: readonly SqlParam[] = []): Promise<RunResult> {
    return { changes: (await this.query(text, params)).rowCount ?? 0 };
  }

  async exec(text: string): Promise<void> {
    // No values: the simple query protocol, which takes several statements.
    const t = this.current();
    try {
      if (t) await t.client.query(config(text, undefined, t.queryTimeoutMs));
      else await this.pool.query(text);
    } catch (e) {
      if (t && breaksConnection(e)) t.broken = true;
      throw cleanError(e);
    }
  }

  inTx(): boolean {
    return this.current() !== undefined;
  }

  tx<T>(fn: () => Promise<T>): Promise<T> {
    return this.transaction(fn);
  }

  /**
   * A transaction whose statements may each run up to timeoutMs (schema steps,
   * waiting for another node's migration): the pool's statement timeout is
   * lifted for it alone. Nested inside a transaction, an ordinary savepoint.
   */
  longTx<T>(timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 86_400_000) throw new Error('a transaction timeout is 1 ms to a day');
    return this.transaction(fn, timeoutMs);
  }

  private async transaction<T>(fn: () => Promise<T>, longMs?: number): Promise<T> {
    const outer = this.current();
    if (outer) {
      const name = `sp${++outer.savepoints}`;
      await this.exec(`SAVEPOINT ${name}`);
      let out: T;
      try {
        out = await fn();
      } catch (e) {
        // A failed ROLLBACK TO leaves the outer transaction aborted: its next statement says so.
        if (!outer.broken) await this.exec(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`).catch(() => {});
        throw e;
      }
      await this.exec(`RELEASE SAVEPOINT ${name}`);
      return out;
    }
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw cleanError(e);
    }
    const t: PgTx = { client, done: false, broken: false, savepoints: 0 };
    // A checked-out client's failures arrive as 'error' events (the pool listens only to idle ones).
    const onError = () => { t.broken = true; };
    client.on('error', onError);
    try {
      try {
        await client.query('BEGIN');
        if (longMs !== undefined) {
          await client.query(`SET LOCAL statement_timeout = ${longMs}`);
          t.queryTimeoutMs = longMs + 10_000;
        }
      } catch (e) {
        t.broken = true;
        throw cleanError(e);
      }
      let out: T;
      try {
        out = await this.txs.run(t, fn);
      } catch (e) {
        if (!t.broken) {
          try {
            await client.query('ROLLBACK');
          } catch {
            t.broken = true;
          }
        }
        throw e;
      }
      try {
        await client.query(config('COMMIT', undefined, t.queryTimeoutMs));
      } catch (e) {
        // Whether it committed is unknown when the connection failed: a storage error, the client dropped.
        if (breaksConnection(e)) t.broken = true;
        else await client.query('ROLLBACK').catch(() => { t.broken = true; });
        throw cleanError(e);
      }
      return out;
    } finally {
      t.done = true;
      client.off('error', onError);
      // release(true) destroys the connection instead of pooling it.
      client.release(t.broken ? true : undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
