// `letterlock member import` from the three sources an operator has: an armored
// keyring, a CSV and an mbox of key mails, all made here with openpgp. Each run
// must import the good keys, refuse the others by reason in words, show progress
// on stderr, and stay within its size bounds.

import { spawnSync } from 'node:child_process';
import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { init } from '../../server/cli/init.ts';
import { openData } from '../../server/app.ts';
import { createList } from '../../server/lists/lists.ts';
import { makeKey, type TestKey } from '../support/keys.ts';
import { tempDir } from '../integration/server/harness.ts';
import { BIN, CLI_SECRET, letterlock, oneLine, ROOT } from './run.ts';
import { testDatabaseConfig } from '../support/test-store.ts';

vi.setConfig({ testTimeout: 600_000, hookTimeout: 300_000 });

const root = tempDir('cli-import');
const data = join(root, 'data');
const LIST = 'keys@lists.test';
const d = ['--data', data];
const k: Record<string, TestKey> = {};
let expired: string;
let noMail: string;

function members(): Array<{ address: string; fingerprint: string }> {
  const r = letterlock(['member', 'list', LIST, '--json', ...d]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Array<{ address: string; fingerprint: string }>;
}

beforeAll(async () => {
  process.env.LETTERLOCK_SECRET = CLI_SECRET;
  await init({ dataDir: data, config: { ...(await testDatabaseConfig()) } });
  const sql = await openData(data, CLI_SECRET);
  await createList(sql, CLI_SECRET, LIST, { maxBytes: 1024 * 1024 });
  await sql.close();
  for (const name of ['ann', 'ben', 'cat', 'dan', 'eve', 'fay', 'gus', 'hal']) k[name] = await makeKey(`${name}@example.org`);
  // Made two days ago, valid for one: expired however slow this machine is.
  expired = (await openpgp.generateKey({
    userIDs: [{ email: 'old@example.org' }], type: 'ecc', curve: 'curve25519Legacy', format: 'armored',
    date: new Date(Date.now() - 2 * 86_400_000), keyExpirationTime: 86_400,
  })).publicKey;
  noMail = (await openpgp.generateKey({ userIDs: [{ name: 'No Address' }], type: 'ecc', curve: 'curve25519Legacy', format: 'armored' })).publicKey;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('a keyring: good keys join under their own address; expired, secret and address-less keys are refused by reason', () => {
  // Two separate blocks and one block holding two keys, as `gpg --export --armor a b` makes.
  const two = k.cat!.publicArmored + k.dan!.publicArmored;
  writeFileSync(join(root, 'ring.asc'), [k.ann!.publicArmored, k.ben!.publicArmored, expired, k.eve!.privateArmored, noMail, two].join('\n'));
  const r = letterlock(['member', 'import', LIST, join(root, 'ring.asc'), ...d]);
  expect(r.status).toBe(1); // some were refused
  expect(r.stdout).toContain(`imported 4 of 7 entries into ${LIST}: 4 added`);
  expect(r.stdout).toContain('refused 3, by reason:');
  expect(r.stdout).toContain('  1 × KEY_EXPIRED: This key has expired. Extend its expiry date in your OpenPGP program, or create a new key.\n      key 3 (old@example.org)');
  expect(r.stdout).toContain('  1 × SECRET_KEY: a secret key: only public keys are imported, and the list never stores secret keys\n      key 4 (eve@example.org)');
  expect(r.stdout).toContain('  1 × NO_ADDRESS: no email address: the key has no user ID with an address, and none was given\n      key 5');
  // Progress, on stderr, as plain lines when not on a terminal.
  expect(r.stderr).toContain(`importing into ${LIST}: 0/7 (0%)`);
  expect(r.stderr).toContain(`importing into ${LIST}: 7/7 (100%)`);
  expect(members().map((m) => [m.address, m.fingerprint])).toEqual(
    ['ann', 'ben', 'cat', 'dan'].map((n) => [`${n}@example.org`, k[n]!.fingerprint]));

  // Again, --json: nothing new, the same refusals, a stable shape.
  const again = letterlock(['member', 'import', LIST, join(root, 'ring.asc'), '--json', ...d]);
  expect(again.status).toBe(1);
  const j = JSON.parse(again.stdout) as Record<string, unknown>;
  expect(j).toMatchObject({
    list: LIST, format: 'keyring', entries: 7, imported: 4, refused: 3,
    results: { 'added': 0, 'already-member': 4, 'updated': 0, 'replaced': 0, 'revocation-recorded': 0 },
    reasons: {
      KEY_EXPIRED: { count: 1, entries: [{ where: 'key 3', address: 'old@example.org' }] },
      SECRET_KEY: { count: 1, entries: [{ where: 'key 4', address: 'eve@example.org' }] },
      NO_ADDRESS: { count: 1, entries: [{ where: 'key 5', address: null }] },
    },
  });
  expect(Object.keys(j).sort()).toEqual(['entries', 'file', 'format', 'imported', 'list', 'reasons', 'refused', 'results']);
});

it('a CSV: address,keyfile and address,"armored key"; bad rows refused by reason; all good: exit 0', () => {
  writeFileSync(join(root, 'eve.asc'), k.eve!.publicArmored);
  writeFileSync(join(root, 'eve-secret.asc'), k.eve!.privateArmored);
  const quoted = (s: string) => `"${s.replace(/"/g, '""')}"`;
  writeFileSync(join(root, 'members.csv'), [
    'address,key',
    'eve@example.org,eve.asc', // relative to the CSV's folder
    `fay@example.org,${quoted(k.fay!.publicArmored)}`,
    'not an address,eve.asc',
    'gus@example.org,missing.asc',
    'gus@example.org,eve-secret.asc',
    `hal@example.org,${quoted(k.gus!.publicArmored)}`, // gus's key for hal
    'hal@example.org',
  ].join('\r\n'));
  const r = letterlock(['member', 'import', LIST, join(root, 'members.csv'), ...d]);
  expect(r.status).toBe(1);
  expect(r.stdout).toContain(`imported 2 of 7 entries into ${LIST}: 2 added`);
  expect(r.stdout).toMatch(/ 1 × BAD_ADDRESS: not a valid email address\n {6}line \d+\n/);
  expect(r.stdout).toMatch(/ 1 × KEY_FILE: the key file cannot be read\n {6}line \d+ \(gus@example\.org\)/);
  expect(r.stdout).toMatch(/ 1 × SECRET_KEY: .*\n {6}line \d+ \(gus@example\.org\)/);
  expect(r.stdout).toMatch(/ 1 × KEY_USERID_MISMATCH: None of this key's user IDs holds the expected email address\.\n {6}line \d+ \(hal@example\.org\)/);
  expect(r.stdout).toMatch(/ 1 × CSV_MALFORMED: the row is not "address,keyfile" or "address,armored key"\n {6}line \d+ \(hal@example\.org\)/);
  expect(members().map((m) => m.address)).toEqual(['ann', 'ben', 'cat', 'dan', 'eve', 'fay'].map((n) => `${n}@example.org`));

  writeFileSync(join(root, 'good.csv'), `gus@example.org,${quoted(k.gus!.publicArmored)}\nhal@example.org,${quoted(k.hal!.publicArmored)}\n`);
  const good = letterlock(['member', 'import', LIST, join(root, 'good.csv'), '--json', ...d]);
  expect(good.status, good.stdout).toBe(0);
  expect(JSON.parse(good.stdout)).toMatchObject({ format: 'csv', entries: 2, imported: 2, refused: 0, reasons: {}, results: { added: 2 } });
});

it('an mbox: Autocrypt headers, key attachments and armored blocks; the latest mail for an address wins', async () => {
  // New keys for four addresses: each import replaces the member's key.
  const nk: Record<string, TestKey> = {};
  for (const n of ['ann', 'ben', 'cat', 'dan']) nk[n] = await makeKey(`${n}@example.org`);
  const b64 = (key: TestKey) => Buffer.from(key.publicKey.write()).toString('base64').replace(/(.{76})/g, '$1\n ');
  const mail = (from: string, headers: string, body: string) => `From ${from} Thu Jan  1 00:00:00 2026\nFrom: <${from}>\nTo: list@example.org\nSubject: key\nMessage-ID: <${Math.random()}@example.org>\n${headers}\n${body}\n`;
  const mbox = [
    mail('ann@example.org', `Autocrypt: addr=ann@example.org; prefer-encrypt=mutual; keydata=\n ${b64(k.ann!)}\n`, 'the old key, in the header\n'),
    mail('ben@example.org', 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n', `--b1\nContent-Type: text/plain\n\nmy key\n--b1\nContent-Type: application/pgp-keys\nContent-Disposition: attachment; filename="ben.asc"\n\n${nk.ben!.publicArmored}\n--b1--\n`),
    mail('cat@example.org', '', `Here is my key:\n\n${nk.cat!.publicArmored}\nFrom the cat\n`),
    mail('dan@example.org', '', 'no key in this one\n'),
    mail('ann@example.org', `Autocrypt: addr=ann@example.org; keydata=\n ${b64(nk.ann!)}\n`, 'a newer mail with the new key\n'),
  ].join('\n').replace(/^From the cat$/m, '>From the cat');
  writeFileSync(join(root, 'keys.mbox'), mbox);
  const r = letterlock(['member', 'import', LIST, join(root, 'keys.mbox'), ...d]);
  expect(r.status).toBe(1);
  expect(r.stdout).toContain(`imported 3 of 5 entries into ${LIST}: 3 keys replaced`);
  expect(r.stdout).toContain('refused 1 (and 1 skipped), by reason:');
  expect(r.stdout).toContain('  1 × NO_KEY: no public key found in this entry\n      mail 4 (dan@example.org)');
  expect(r.stdout).toContain('  1 × DUPLICATE: the same address appears again later in the file (the later one is used)\n      mail 1 (ann@example.org)');
  const fprs = Object.fromEntries(members().map((m) => [m.address, m.fingerprint]));
  for (const n of ['ann', 'ben', 'cat']) expect(fprs[`${n}@example.org`]).toBe(nk[n]!.fingerprint);
  expect(fprs['dan@example.org']).toBe(k.dan!.fingerprint);
});

it('on a terminal, a progress bar instead of lines', () => {
  // script(1) (util-linux, on every Debian) gives the command a pseudo-terminal.
  const cmd = [process.execPath, BIN, 'member', 'import', LIST, join(root, 'good.csv'), '--data', data].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, LETTERLOCK_SECRET: CLI_SECRET }, encoding: 'utf8', timeout: 120_000 });
  expect(r.status, r.stdout).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`importing into ${LIST.replace('.', '\\.')} \\[[█░]+\\] 100% \\| 2/2 \\| ETA`));
  expect(r.stdout).not.toContain('(100%)'); // the plain lines are for logs and pipes only
  expect(r.stdout).toContain(`imported 2 of 2 entries into ${LIST}: 2 already members`);
});

it('bounds and bad files: one line each, nothing imported', () => {
  const big = join(root, 'big.asc');
  writeFileSync(big, '');
  truncateSync(big, 64 * 1024 * 1024 + 1); // sparse: refused by its size before any read
  const tooBig = letterlock(['member', 'import', LIST, big, ...d]);
  expect(tooBig.status).toBe(1);
  expect(oneLine(tooBig)).toBe(`letterlock: import file ${big} is larger than 64 MB`);

  const missing = letterlock(['member', 'import', LIST, join(root, 'nope.csv'), ...d]);
  expect(missing.status).toBe(1);
  expect(oneLine(missing)).toBe(`letterlock: import file ${join(root, 'nope.csv')} does not exist`);

  writeFileSync(join(root, 'empty.csv'), '\n\n');
  const empty = letterlock(['member', 'import', LIST, join(root, 'empty.csv'), ...d]);
  expect(empty.status).toBe(1);
  expect(oneLine(empty)).toBe(`letterlock: ${join(root, 'empty.csv')}: nothing to import in this file`);

  writeFileSync(join(root, 'no-keys.asc'), 'just text\n');
  const noKeys = letterlock(['member', 'import', LIST, join(root, 'no-keys.asc'), '--format', 'keyring', ...d]);
  expect(noKeys.status).toBe(1);
  expect(oneLine(noKeys)).toBe(`letterlock: ${join(root, 'no-keys.asc')}: no OpenPGP key block found`);

  // More rows than an import takes: refused before anything is registered.
  writeFileSync(join(root, 'many.csv'), Array.from({ length: 50_002 }, (_, i) => `m${i}@example.org,m.asc`).join('\n'));
  const many = letterlock(['member', 'import', LIST, join(root, 'many.csv'), ...d]);
  expect(many.status).toBe(1);
  expect(oneLine(many)).toBe(`letterlock: ${join(root, 'many.csv')}: more than 50000 entries: split the file`);
  expect(members()).toHaveLength(8);
});
