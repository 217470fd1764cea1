// `letterlock backup` and `restore` copy a SQLite database only: on a data folder
// whose database is PostgreSQL they refuse with a sentence that names pg_dump and
// pg_restore (and the config and secret that must be kept with the dump), never
// a SQLite error, never the URL (it may carry a password). Runs on a real
// PostgreSQL whatever LETTERLOCK_TEST_STORE says: the refusal is the subject.

import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { letterlock } from '../../cli/run.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeKey } from '../../support/keys.ts';
import { testPostgres } from '../../support/test-store.ts';
import { tempDir } from './harness.ts';

const SLOW = 240_000;
const root = tempDir('backup-pg');
const pgData = join(root, 'pg-data');
const liteData = join(root, 'lite-data');
const pub = join(root, 'ops.asc');
const sec = join(root, 'ops-secret.asc');
const pass = join(root, 'pass.txt');
const PASSWORD = 'pw-never-shown-4711';
afterAll(async () => {
  await (await testPostgres()).stop();
  rmSync(root, { recursive: true, force: true });
}, SLOW);

function cli(args: string[], env: Record<string, string> = {}) {
  return letterlock(args, { LETTERLOCK_SECRET: 'backup-pg-secret-0123456789abcdef', ...env });
}

beforeAll(async () => {
  const ops = await makeKey('ops@example.org');
  writeFileSync(pub, ops.publicArmored);
  writeFileSync(sec, ops.privateArmored, { mode: 0o600 });
  writeFileSync(pass, `${ops.passphrase}\n`, { mode: 0o600 });
  // A password in the URL (the test cluster trusts local connections and ignores it).
  const url = new URL(await (await testPostgres()).createDatabase());
  url.password = PASSWORD;
  const init = cli(['init', '--data', pgData, '--database', url.toString()]);
  expect(init.status, init.stderr).toBe(0);
  expect(readFileSync(join(pgData, 'letterlock.json'), 'utf8')).toContain('postgres://');
  expect(existsSync(join(pgData, 'letterlock.db'))).toBe(false);
  expect(cli(['init', '--data', liteData]).status).toBe(0);
}, SLOW);

it('backup refuses a PostgreSQL data folder and says to use pg_dump, keeping the config and secret', () => {
  const out = join(root, 'pg.pgp');
  const r = cli(['backup', '--data', pgData, '--to', pub, '--out', out]);
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/PostgreSQL/);
  expect(r.stderr).toMatch(/pg_dump/);
  expect(r.stderr).toMatch(/server secret/);
  expect(r.stderr).not.toContain(PASSWORD);
  expect(r.stderr).not.toMatch(/SQLITE|at .*\.ts:\d+/); // no SQLite error, no stack
  expect(existsSync(out)).toBe(false);
  const j = cli(['backup', '--data', pgData, '--to', pub, '--out', out, '--json']);
  expect(j.status).toBe(1);
  expect(j.stdout).toBe('');
  expect(j.stderr).toMatch(/pg_dump/);
}, SLOW);

it('restore refuses to write into a PostgreSQL data folder (or under LETTERLOCK_DATABASE), and leaves it as it was', () => {
  const file = join(root, 'lite.pgp');
  const b = cli(['backup', '--data', liteData, '--to', pub, '--out', file]);
  expect(b.status, b.stderr).toBe(0);
  const before = readdirSync(pgData).sort();
  const r = cli(['restore', file, '--data', pgData, '--key', sec, '--passphrase-file', pass, '--force']);
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/pg_restore/);
  expect(r.stderr).not.toContain(PASSWORD);
  expect(readdirSync(pgData).sort()).toEqual(before);
  // A new folder is refused too when the environment points the server at PostgreSQL.
  const fresh = join(root, 'fresh');
  const e = cli(['restore', file, '--data', fresh, '--key', sec, '--passphrase-file', pass], { LETTERLOCK_DATABASE: `postgres://x:${PASSWORD}@127.0.0.1:1/none` });
  expect(e.status, e.stderr).toBe(1);
  expect(e.stderr).toMatch(/LETTERLOCK_DATABASE/);
  expect(e.stderr).not.toContain(PASSWORD);
  // Without it the same backup restores (the refusal is about the target, not the file).
  const ok = cli(['restore', file, '--data', fresh, '--key', sec, '--passphrase-file', pass]);
  expect(ok.status, ok.stderr).toBe(0);
}, SLOW);
