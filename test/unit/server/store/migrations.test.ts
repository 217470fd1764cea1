// Every schema Letterlock shipped before it counted versions (test/fixtures/schemas/,
// made by generate.ts from each commit's own store code) opens as today's schema
// with its rows intact, and a server starts on it and delivers a member's post.

import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrivateKey, readPublicKey, unlockPrivateKey } from '../../../../shared/index.ts';
import { startServer } from '../../../../server/app.ts';
import { loadConfig, writeConfig } from '../../../../server/config/config.ts';
import { createList } from '../../../../server/lists/lists.ts';
import { silentLog } from '../../../../server/log/log.ts';
import { openDb } from '../../../../server/store/db.ts';
import { SqliteSql } from '../../../../server/store/sql.ts';
import { getList } from '../../../../server/store/lists.ts';
import { migrate, MIGRATIONS, SCHEMA_VERSION, SchemaError, schemaVersion } from '../../../../server/store/migrations.ts';
import { compose, send, Sink } from '../../../integration/server/harness.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'schemas');
const fixtures = readdirSync(FIXTURES).filter((f) => /^\d\d-[0-9a-f]{7}\.sql$/.test(f)).sort();
const people = JSON.parse(readFileSync(join(FIXTURES, 'people.json'), 'utf8')) as {
  secret: string; list: string; people: Array<{ address: string; passphrase: string; privateArmored: string }>;
};

const dir = mkdtempSync(join(tmpdir(), 'letterlock-migrations-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes the fixture into a database file the way that release left it. */
function load(fixture: string, path: string): void {
  const db = new Database(path);
  db.exec(readFileSync(join(FIXTURES, fixture), 'utf8'));
  db.close();
}

type Rows = Record<string, Array<Record<string, unknown>>>;

function rowsOf(db: Database.Database): Rows {
  const out: Rows = {};
  for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>) {
    out[name] = db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all() as Array<Record<string, unknown>>;
  }
  return out;
}

/** Tables, their columns (name, type, NOT NULL, key) and index names: the shape the code relies on. */
function shape(db: Database.Database): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { type, name } of db.prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as Array<{ type: string; name: string }>) {
    out[`${type} ${name}`] = type === 'table'
      ? (db.prepare(`PRAGMA table_info("${name}")`).all() as Array<{ name: string; type: string; notnull: number; pk: number }>)
        .map((c) => `${c.name} ${c.type}${c.notnull ? ' NOT NULL' : ''}${c.pk ? ` PK${c.pk}` : ''}`).sort()
      : true;
  }
  return out;
}

/** The schema's text as SQLite keeps it (defaults included). */
function sqlOf(db: Database.Database): string {
  return (db.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").all() as Array<{ sql: string }>).map((r) => r.sql).join(';\n');
}

let current: Record<string, unknown>;
let currentSql: string;
beforeAll(() => {
  const db = openDb(join(dir, 'fresh.db'));
  current = shape(db);
  currentSql = sqlOf(db);
  db.close();
});

describe('schema migrations', () => {
  it('has a fixture for every schema shipped before versions were counted, oldest first', () => {
    expect(fixtures).toEqual(['01-16cfc1f.sql', '02-7603d95.sql', '03-c7c0ec8.sql', '04-80e406d.sql', '05-af29f1e.sql', '06-8c4e915.sql', '07-c7f9740.sql', '08-0f54b8e.sql']);
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('a new database has every table, column and index of the last schema shipped without a version', () => {
    const path = join(dir, 'last-shipped.db');
    load(fixtures.at(-1)!, path);
    const raw = new Database(path);
    const last = shape(raw) as Record<string, string[] | true>;
    raw.close();
    for (const [name, columns] of Object.entries(last)) {
      expect(current[name], name).toBeDefined();
      if (Array.isArray(columns)) expect(current[name], name).toEqual(expect.arrayContaining(columns));
    }
  });

  const seenSql = new Set<string>();
  for (const fixture of fixtures) {
    it(`${fixture}: opens as schema ${SCHEMA_VERSION} with every row intact, and again without change`, async () => {
      const path = join(dir, fixture.replace('.sql', '.db'));
      load(fixture, path);
      const raw = new Database(path);
      expect(schemaVersion(raw)).toBe(0);
      const before = rowsOf(raw);
      const oldSql = sqlOf(raw);
      raw.close();
      // Each fixture really is an older schema (steps 7 and 8 came after the last one's columns were in use).
      expect(oldSql).not.toBe(currentSql);
      expect(seenSql.has(oldSql), 'two fixtures with the same schema').toBe(false);
      seenSql.add(oldSql);

      const db = openDb(path);
      expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
      expect(shape(db)).toEqual(current);
      const after = rowsOf(db);
      for (const [table, rows] of Object.entries(before)) {
        // Old columns keep their values; new columns have their defaults.
        expect(after[table]!.map((r) => Object.fromEntries(Object.keys(rows[0] ?? {}).map((k) => [k, r[k]]))), table).toEqual(rows);
      }
      expect(before.lists!.length).toBe(2);
      expect(before.members!.length).toBe(2);
      const sql = new SqliteSql(db);
      const list = (await getList(sql, people.list))!;
      expect(list).toMatchObject({ replayWindowDays: 7, hideSubjects: false, postPolicy: 'members' });
      // A list made after the upgrade gets today's defaults, whatever the old column said.
      const made = await createList(sql, people.secret, `new-${fixture.slice(0, 2)}@lists.example.org`, { maxBytes: 4096 });
      expect(made).toMatchObject({ replyTo: 'list', replayWindowDays: 7, hideSubjects: false });
      db.close();

      const again = openDb(path);
      expect(schemaVersion(again)).toBe(SCHEMA_VERSION);
      expect(rowsOf(again).lists!.length).toBe(3);
      again.close();
    }, 120_000);
  }

  it('refuses a database from a newer Letterlock, and leaves it as it was', () => {
    const path = join(dir, 'newer.db');
    openDb(path).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.exec('CREATE TABLE from_the_future (x INTEGER)');
    raw.close();
    let err: unknown;
    try { openDb(path); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SchemaError);
    expect((err as SchemaError).code).toBe('SCHEMA_TOO_NEW');
    expect((err as Error).message).toMatch(new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this Letterlock knows \\(${SCHEMA_VERSION}\\)`));
    const after = new Database(path);
    expect(schemaVersion(after)).toBe(SCHEMA_VERSION + 1);
    after.close();
  });

  it('a step that fails leaves the database at the step before it', () => {
    const db = openDb(join(dir, 'failing.db'));
    const steps = [...MIGRATIONS, {
      version: SCHEMA_VERSION + 1, what: 'fails half way',
      up: (d: Database.Database) => { d.exec('CREATE TABLE half_done (x INTEGER)'); throw new Error('step failed'); },
    }];
    expect(() => migrate(db, steps)).toThrow('step failed');
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half_done'").get()).toBeUndefined();
    db.close();
  });
});

describe('a server on a migrated data folder', () => {
  const sink = new Sink();
  beforeAll(async () => { await sink.start(); });
  afterAll(async () => { await sink.stop(); });

  for (const fixture of fixtures) {
    it(`${fixture}: starts, and a member's post reaches the other member`, async () => {
      const data = join(dir, `data-${fixture.slice(0, 2)}`);
      mkdirSync(data, { mode: 0o700 });
      load(fixture, join(data, 'letterlock.db'));
      writeConfig(data, { smtp: { port: 0, trustedClients: ['127.0.0.1'] }, http: { port: 0 }, relay: `smtp://127.0.0.1:${sink.port}`, pipeline: { threads: 1 } });
      const server = await startServer(data, loadConfig(data).config, people.secret, { log: silentLog });
      try {
        const alice = people.people.find((p) => p.address === 'alice@example.org')!;
        const listKey = (await readPublicKey((await getList(server.sql, people.list))!.listPublic)).key;
        const from = { address: alice.address, privateKey: await unlockPrivateKey(await parsePrivateKey(alice.privateArmored), alice.passphrase) };
        const raw = await compose(from as never, people.list, listKey, `after the upgrade from ${fixture}`);
        const seen = sink.to('bob@example.org').length;
        expect(await send(server.smtpPort, alice.address, people.list, raw)).toMatch(/^250/);
        await sink.waitFor(() => sink.to('bob@example.org').length > seen, 60_000, `bob's copy (${fixture})`);
      } finally {
        await server.close();
      }
    }, 120_000);
  }
});
