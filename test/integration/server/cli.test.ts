// The `letterlock` command line, run as the operator runs it: init with a secret
// file (and refusing a readable one), list create/show, member add (the key
// policy applies, with the member address expected), list and remove.

import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { generateKey, readPrivateKeyForStorage, unlockPrivateKey } from '../../../shared/index.ts';
import { databaseSpec } from '../../../server/app.ts';
import { openDatabase } from '../../../server/store/open.ts';
import { testDatabaseArgs } from '../../support/test-store.ts';
import { tempDir } from './harness.ts';

const root = tempDir('cli');
afterAll(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}) {
  const e: Record<string, string | undefined> = { ...process.env, ...env };
  if (!('LETTERLOCK_SECRET' in env)) delete e.LETTERLOCK_SECRET;
  return spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', ...args], { cwd: join(import.meta.dirname, '..', '..', '..'), env: e, encoding: 'utf8' });
}

it('init, list create/show, member add/list/remove, and the secret file checks', async () => {
  const data = join(root, 'data');
  const init = cli(['init', '--data', data, '--smtp-port', '0', ...(await testDatabaseArgs())]);
  expect(init.status, init.stderr).toBe(0);
  expect(init.stdout).toMatch(/server secret: new file .*secret \(mode 0600\)/);
  expect(statSync(join(data, 'secret')).mode & 0o777).toBe(0o600);
  expect(JSON.parse(readFileSync(join(data, 'letterlock.json'), 'utf8')).smtp.port).toBe(0);

  const created = cli(['list', 'create', 'news@lists.test', '--data', data, '--owner', 'boss@example.org', '--policy', 'moderated']);
  expect(created.status, created.stderr).toBe(0);
  const fpr = /list key\s+([0-9A-F]{40})/.exec(created.stdout)?.[1];
  expect(fpr).toBeDefined();
  // The stored private keys are protected: the storage check of shared/ refuses unprotected ones.
  const sql = await openDatabase(databaseSpec(data));
  const row = (await sql.get('SELECT list_private, archive_private FROM lists')) as { list_private: string; archive_private: string };
  await sql.close();
  for (const armored of [row.list_private, row.archive_private]) {
    const { key } = await readPrivateKeyForStorage(armored);
    expect(key.isDecrypted()).toBe(false);
    await expect(unlockPrivateKey(key, 'wrong passphrase')).rejects.toMatchObject({ code: 'KEY_PASSPHRASE_WRONG' });
    await unlockPrivateKey(key, readFileSync(join(data, 'secret'), 'utf8').trim());
  }
  const shown = cli(['list', 'show', 'news@lists.test', '--data', data]);
  expect(shown.stdout).toContain(fpr!);
  expect(shown.stdout).toMatch(/policy\s+moderated/);
  expect(shown.stdout).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
  expect(shown.stdout).toMatch(/replay\s+7-day window/);
  // The replay window is a list setting: 1 to 365 days.
  const set = cli(['list', 'set', 'news@lists.test', '--data', data, '--replay-window-days', '3']);
  expect(set.status, set.stderr).toBe(0);
  expect(set.stdout).toContain('replay window 3 days');
  expect(cli(['list', 'show', 'news@lists.test', '--data', data]).stdout).toMatch(/replay\s+3-day window/);
  expect(cli(['list', 'set', 'news@lists.test', '--data', data, '--replay-window-days', '0']).status).not.toBe(0);

  const wrong = await generateKey({ kind: 'subscriber', address: 'someone-else@example.org', passphrase: 'p' });
  writeFileSync(join(root, 'wrong.asc'), wrong.publicKeyArmored);
  const refused = cli(['member', 'add', 'news@lists.test', 'ann@example.org', join(root, 'wrong.asc'), '--data', data]);
  expect(refused.status).toBe(1);
  expect(refused.stderr).toMatch(/KEY_USERID_MISMATCH: None of this key's user IDs holds the expected email address/);

  const ann = await generateKey({ kind: 'subscriber', address: 'ann@example.org', passphrase: 'p' });
  writeFileSync(join(root, 'ann.asc'), ann.publicKeyArmored);
  const added = cli(['member', 'add', 'news@lists.test', 'ann@example.org', join(root, 'ann.asc'), '--data', data]);
  expect(added.status, added.stderr).toBe(0);
  expect(cli(['member', 'list', 'news@lists.test', '--data', data]).stdout).toContain(`ann@example.org  ${ann.facts.fingerprint}`);
  expect(cli(['member', 'remove', 'news@lists.test', 'ann@example.org', '--data', data]).status).toBe(0);
  expect(cli(['member', 'list', 'news@lists.test', '--data', data]).stdout.trim()).toBe('');

  // A wrong secret and a readable secret file are refused with a clear message.
  expect(cli(['list', 'ls', '--data', data], { LETTERLOCK_SECRET: 'not-the-secret-of-this-folder' }).stderr).toMatch(/does not match/);
  chmodSync(join(data, 'secret'), 0o644);
  const readable = cli(['list', 'ls', '--data', data]);
  expect(readable.status).toBe(1);
  expect(readable.stderr).toMatch(/mode 0644: it must not be readable by group or others/);
  expect(cli(['frobnicate', '--data', data], { LETTERLOCK_SECRET: 'x'.repeat(20) }).stderr).toMatch(/letterlock: /);
});
