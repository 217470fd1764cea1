// `letterlock backup` and `letterlock restore` run as the operator runs them (the
// package's bin): exit codes, human and --json output, and the refusals.

import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { letterlock } from '../../cli/run.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeKey } from '../../support/keys.ts';
import { tempDir } from './harness.ts';

// Each command is a fresh Node process (about 1 s idle, 5 s or more on a busy
// machine): every test gets a generous budget.
const SLOW = 240_000;
const root = tempDir('cli-backup');
const data = join(root, 'data');
const pub = join(root, 'ops.asc');
const sec = join(root, 'ops-secret.asc');
const pass = join(root, 'pass.txt');
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}) {
  // No LETTERLOCK_SECRET: init writes the folder's own secret file, as an operator's would.
  return letterlock(args, { LETTERLOCK_SECRET: undefined, ...env });
}

beforeAll(async () => {
  const ops = await makeKey('ops@example.org');
  writeFileSync(pub, ops.publicArmored);
  writeFileSync(sec, ops.privateArmored, { mode: 0o600 });
  writeFileSync(pass, `${ops.passphrase}\n`, { mode: 0o600 });
  const init = cli(['init', '--data', data]);
  expect(init.status, init.stderr).toBe(0);
  const list = cli(['list', 'create', 'keep@lists.test', '--data', data]);
  expect(list.status, list.stderr).toBe(0);
}, SLOW);

it('backup: --json describes the file; human output says what is inside and how to restore', () => {
  const out = join(root, 'one.pgp');
  const r = cli(['backup', '--data', data, '--to', pub, '--out', out, '--json']);
  expect(r.status, r.stderr).toBe(0);
  const j = JSON.parse(r.stdout) as { file: string; files: string[]; schemaVersion: number; notes: string[] };
  expect(j).toMatchObject({ file: out, files: ['letterlock.db', 'letterlock.json', 'secret'], notes: [] });
  expect(existsSync(out)).toBe(true);

  const human = cli(['backup', '--data', data, '--out', join(root, 'two.pgp')], { LETTERLOCK_BACKUP_KEY: pub });
  expect(human.status, human.stderr).toBe(0);
  expect(human.stdout).toMatch(/^backup written: .*two\.pgp \([\d.]+ KB, encrypted to [0-9A-F]{40}\)$/m);
  expect(human.stdout).toMatch(/^contains: letterlock\.db, letterlock\.json, secret \(database schema \d+, [\d.]+ KB\)$/m);
  expect(human.stdout).toContain('letterlock restore FILE --key');
}, SLOW);

it('backup refusals: no key (2), not initialized (3), a secret key as --to (1), an existing --out (1)', () => {
  const noKey = cli(['backup', '--data', data]);
  expect(noKey.status).toBe(2);
  expect(noKey.stderr).toMatch(/^letterlock: backup needs the operator's public key: --to KEYFILE/);
  const nowhere = cli(['backup', '--data', join(root, 'nothing'), '--to', pub]);
  expect(nowhere.status).toBe(3);
  expect(nowhere.stderr).toMatch(/letterlock\.db does not exist/);
  const secret = cli(['backup', '--data', data, '--to', sec, '--out', join(root, 'x.pgp')]);
  expect(secret.status).toBe(1);
  expect(secret.stderr).toMatch(/holds a secret key: give the public key/);
  const exists = cli(['backup', '--data', data, '--to', pub, '--out', join(root, 'one.pgp')]);
  expect(exists.status).toBe(1);
  expect(exists.stderr).toMatch(/exists: a backup never overwrites a file/);
  for (const r of [noKey, nowhere, secret, exists]) expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}, SLOW);

it('restore: into a new folder (--json), then refused there as not empty (1), without --key (2), with a wrong passphrase (1)', () => {
  const target = join(root, 'restored');
  const r = cli(['restore', join(root, 'one.pgp'), '--key', sec, '--passphrase-file', pass, '--data', target, '--json']);
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ dataDir: target, files: ['letterlock.db', 'letterlock.json', 'secret'], notes: [] });
  const ls = cli(['list', 'ls', '--data', target, '--json']);
  expect(ls.status, ls.stderr).toBe(0);
  expect(ls.stdout).toContain('keep@lists.test');

  const again = cli(['restore', join(root, 'one.pgp'), '--key', sec, '--passphrase-file', pass, '--data', target]);
  expect(again.status).toBe(1);
  expect(again.stderr).toMatch(/is not empty: restore into a new folder, or add --force/);
  const forced = cli(['restore', join(root, 'one.pgp'), '--key', sec, '--data', target, '--force'], { LETTERLOCK_KEY_PASSPHRASE: 'pass-ops@example.org' });
  expect(forced.status, forced.stderr).toBe(0);
  expect(forced.stdout).toMatch(/^restored .*restored from the backup of \d{4}-/m);
  expect(forced.stdout).toContain(`Start it with: letterlock serve --data ${target}`);

  const noKey = cli(['restore', join(root, 'one.pgp'), '--data', join(root, 'other')]);
  expect(noKey.status).toBe(2);
  writeFileSync(join(root, 'wrong.txt'), 'not the passphrase\n');
  const wrong = cli(['restore', join(root, 'one.pgp'), '--key', sec, '--passphrase-file', join(root, 'wrong.txt'), '--data', join(root, 'other')]);
  expect(wrong.status).toBe(1);
  expect(wrong.stderr).toMatch(/the passphrase does not unlock the key/);
  expect(existsSync(join(root, 'other'))).toBe(false);
  expect(readdirSync(root).filter((n) => n.endsWith('.part'))).toEqual([]);
}, SLOW);

it('a data folder from a newer Letterlock (schema version) is refused in one line, exit 1, and left as it was', async () => {
  const future = join(root, 'future');
  expect(cli(['init', '--data', future]).status).toBe(0);
  const { default: Database } = await import('better-sqlite3');
  const { SCHEMA_VERSION } = await import('../../../server/store/migrations.ts');
  const raw = new Database(join(future, 'letterlock.db'));
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  const r = cli(['list', 'ls', '--data', future]);
  expect(r.status).toBe(1);
  expect(r.stderr.trim()).toBe(`letterlock: the database has schema version ${SCHEMA_VERSION + 1}, newer than this Letterlock knows (${SCHEMA_VERSION}): run the newer Letterlock that wrote it, or restore a backup made before the upgrade`);
  const after = new Database(join(future, 'letterlock.db'), { readonly: true });
  expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
  after.close();
}, SLOW);
