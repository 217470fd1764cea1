// Backup and restore (server/ops/backup.ts) against a running list server: the
// backup is taken while it serves, restored into a new folder, and a second
// server started there still has the members, delivers, and serves the archive
// (a member logs in and decrypts the posts made before the backup). The operator
// key is made by the real gpg, and gpg plus tar recover the bundle by hand.
// Then every refusal: wrong key, locked key, non-empty folder, newer schema,
// damaged file, damaged database.

import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleCopy, readMessage, signStatement, type ArchiveMessages, type ThreadPage } from '../../../shared/index.ts';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { readSecretFile } from '../../../server/config/secret.ts';
import { silentLog } from '../../../server/log/log.ts';
import { backup, BackupError, restore, type BackupCode } from '../../../server/ops/backup.ts';
import { packTar } from '../../../server/ops/tar.ts';
import { openDb, openSqlite } from '../../../server/store/db.ts';
import { getList } from '../../../server/store/lists.ts';
import { countMembers } from '../../../server/store/members.ts';
import { SCHEMA_VERSION } from '../../../server/store/migrations.ts';
import { Gpg } from '../../support/gpg.ts';
import { addList, compose, initData, listPublicKey, person, SECRET, send, Sink, tempDir, type Person } from './harness.ts';

// Generous budgets: keys, servers and openpgp work on a slow, busy machine.
const SLOW = 240_000;
const LIST = 'kept@lists.test';
const OPERATOR_PASS = 'operator-passphrase';

let sink: Sink, work: string, dataDir: string, server: RunningServer;
let alice: Person, bob: Person, gpg: Gpg;
let operatorPublic: string, operatorSecret: string, strangerSecret: string;
const markers: string[] = [];

async function refused(p: Promise<unknown>, code: BackupCode): Promise<BackupError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e, `expected ${code}`).toBeInstanceOf(BackupError);
  expect((e as BackupError).code).toBe(code);
  return e as BackupError;
}

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  work = tempDir('backup');
  dataDir = join(work, 'data');
  await initData(dataDir, sink.port);
  // The operator's usual setup: the secret in a mode-0600 file in the folder.
  writeFileSync(join(dataDir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
  [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  await addList(dataDir, LIST, { owner: 'owner@example.org' }, [alice, bob]);
  server = await startServer(dataDir, loadConfig(dataDir).config, SECRET, { log: silentLog });
  const listKey = await listPublicKey(dataDir, LIST);
  for (let i = 0; i < 2; i++) {
    markers.push(`BACKUP-MARKER-${i}-${Date.now()}`);
    await send(server.smtpPort, alice.address, LIST, await compose(alice, LIST, listKey, `${markers[i]}\n`, `Subject ${markers[i]}`));
  }
  await sink.waitFor(() => sink.to(bob.address).length >= 2, 60_000, "bob's two copies");

  gpg = new Gpg();
  const op = await gpg.generateKey('List Operator', 'operator@example.org', OPERATOR_PASS);
  operatorPublic = join(work, 'operator.asc');
  operatorSecret = join(work, 'operator-secret.asc');
  writeFileSync(operatorPublic, op.publicKey);
  writeFileSync(operatorSecret, op.secretKey, { mode: 0o600 });
  const stranger = await gpg.generateKey('Someone Else', 'else@example.org', 'else-pass');
  strangerSecret = join(work, 'stranger-secret.asc');
  writeFileSync(strangerSecret, stranger.secretKey, { mode: 0o600 });
}, SLOW);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  gpg?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function api<T>(base: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** Bob logs in to the archive of a server and decrypts every post in it: the subjects. */
async function archiveSubjects(s: RunningServer): Promise<string[]> {
  const base = `http://127.0.0.1:${s.httpPort}`;
  const c = await api<{ challengeId: string; statement: string }>(base, 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: bob.address });
  expect(c.status).toBe(200);
  const l = await api<{ token: string }>(base, 'POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, bob.privateKey) });
  expect(l.status).toBe(200);
  const threads = await api<ThreadPage>(base, 'GET', `/v1/lists/${LIST}/archive/threads?limit=50`, undefined, l.body.token);
  const ids = threads.body.threads.flatMap((t) => t.messages.map((m) => m.id));
  const page = await api<ArchiveMessages>(base, 'POST', `/v1/lists/${LIST}/archive/messages`, { ids }, l.body.token);
  expect(page.status).toBe(200);
  const subjects: string[] = [];
  for (const m of page.body.messages) {
    const read = await readMessage(assembleCopy(Buffer.from(m.wrappedKey, 'base64'), Buffer.from(m.body, 'base64')), { privateKey: bob.privateKey, senderKeys: [alice.publicKey] });
    expect(read.verification.valid).toBe(true);
    subjects.push(read.message.subject ?? '');
  }
  return subjects.sort();
}

describe('backup of a running server, restored into a new folder', () => {
  let file: string;

  it('writes one file encrypted to the operator key, mode 0600, and leaves no plaintext copy behind', async () => {
    file = join(work, 'first.pgp');
    // A post arriving while the backup runs: the copy stays consistent.
    const during = send(server.smtpPort, alice.address, LIST, await compose(alice, LIST, await listPublicKey(dataDir, LIST), 'during the backup\n', 'During'));
    const r = await backup({ dataDir, to: operatorPublic, out: file });
    await during;
    expect(r).toMatchObject({ file, schemaVersion: SCHEMA_VERSION, files: ['letterlock.db', 'letterlock.json', 'secret'], notes: [] });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const bytes = readFileSync(file);
    expect(bytes.length).toBe(r.bytes);
    for (const clear of ['SQLite format 3', SECRET, 'letterlock.json', '-----BEGIN PGP PRIVATE']) expect(bytes.includes(clear)).toBe(false);
    expect(readdirSync(dataDir).filter((n) => n.startsWith('.backup-'))).toEqual([]);
    // Never overwrites.
    await refused(backup({ dataDir, to: operatorPublic, out: file }), 'OUT_EXISTS');
  }, SLOW);

  it('opens by hand with gpg and tar (no Letterlock needed)', async () => {
    const r = await gpg.mustRun(['--decrypt', file], undefined, OPERATOR_PASS);
    // Even decrypted, the bundle holds no post's text (the database never did).
    for (const m of markers) expect(r.stdout.includes(m)).toBe(false);
    const out = join(work, 'by-hand');
    mkdirSync(out);
    const tar = spawnSync('tar', ['-x', '-C', out], { input: r.stdout });
    expect(tar.status).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['letterlock-backup.json', 'letterlock.db', 'letterlock.json', 'secret']);
    expect(readFileSync(join(out, 'secret'), 'utf8').trim()).toBe(SECRET);
    const db = new Database(join(out, 'letterlock.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  }, SLOW);

  it('restores into a new folder where a server starts with the members, delivers, and serves the archive', async () => {
    const target = join(work, 'restored');
    const r = await restore({ file, key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: target });
    expect(r).toMatchObject({ dataDir: target, schemaFrom: SCHEMA_VERSION, schemaTo: SCHEMA_VERSION, notes: [] });
    expect(statSync(target).mode & 0o777).toBe(0o700);
    expect(statSync(join(target, 'secret')).mode & 0o777).toBe(0o600);
    expect(statSync(join(target, 'letterlock.db')).mode & 0o777).toBe(0o600);
    expect(readSecretFile(join(target, 'secret'))).toBe(SECRET);
    expect(readdirSync(target).filter((n) => n.startsWith('.restore-'))).toEqual([]);

    const again = await startServer(target, loadConfig(target).config, readSecretFile(join(target, 'secret')), { log: silentLog });
    try {
      const list = (await getList(again.sql, LIST))!;
      expect(await countMembers(again.sql, list.id)).toBe(2);
      const subjects = await archiveSubjects(again);
      for (const m of markers) expect(subjects).toContain(`Subject ${m}`);
      // The post sent during the backup is in it or not, depending on the race; nothing else differs.
      const live = await archiveSubjects(server);
      expect(live.filter((x) => x !== 'During')).toEqual(subjects.filter((x) => x !== 'During'));
      // The restored list key still opens posts and the members still get them.
      const before = sink.to(bob.address).length;
      await send(again.smtpPort, alice.address, LIST, await compose(alice, LIST, await listPublicKey(target, LIST), 'after the restore\n', 'After'));
      await sink.waitFor(() => sink.to(bob.address).length > before, 60_000, "bob's copy from the restored server");
    } finally {
      await again.close();
    }
  }, SLOW);

  it('refuses a non-empty folder, and with --force replaces its database (stale WAL files too)', async () => {
    const target = join(work, 'occupied');
    mkdirSync(target);
    writeFileSync(join(target, 'notes.txt'), 'mine');
    await refused(restore({ file, key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: target }), 'NOT_EMPTY');
    expect(readdirSync(target)).toEqual(['notes.txt']);
    writeFileSync(join(target, 'letterlock.db-wal'), 'stale');
    const r = await restore({ file, key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: target, force: true });
    expect(r.files).toEqual(['letterlock.db', 'letterlock.json', 'secret']);
    expect(readFileSync(join(target, 'notes.txt'), 'utf8')).toBe('mine');
    const sql = openSqlite(join(target, 'letterlock.db'));
    expect(await countMembers(sql, (await getList(sql, LIST))!.id)).toBe(2);
    await sql.close();
  }, SLOW);

  it('refuses the wrong key, a public key, a locked key without its passphrase and a wrong passphrase, and creates nothing', async () => {
    const target = join(work, 'never');
    await refused(restore({ file, key: strangerSecret, passphrase: 'else-pass', dataDir: target }), 'WRONG_KEY');
    await refused(restore({ file, key: operatorPublic, dataDir: target }), 'KEY_NOT_SECRET');
    await refused(restore({ file, key: operatorSecret, dataDir: target }), 'KEY_LOCKED');
    await refused(restore({ file, key: operatorSecret, passphrase: 'not it', dataDir: target }), 'BAD_PASSPHRASE');
    expect(existsSync(target)).toBe(false);
    // The backup side: a secret key is not where the public one goes.
    await refused(backup({ dataDir, to: operatorSecret, out: join(work, 'x.pgp') }), 'KEY_IS_SECRET');
    await refused(backup({ dataDir: join(work, 'nothing-here'), to: operatorPublic, out: join(work, 'y.pgp') }), 'NOT_INITIALIZED');
  }, SLOW);

  it('refuses a damaged file: a flipped byte, a truncated file, a file that is no backup', async () => {
    const bytes = readFileSync(file);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length * 0.6)]! ^= 0x20;
    writeFileSync(join(work, 'flipped.pgp'), flipped);
    await refused(restore({ file: join(work, 'flipped.pgp'), key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: join(work, 'f1') }), 'CORRUPT');
    writeFileSync(join(work, 'short.pgp'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const short = await restore({ file: join(work, 'short.pgp'), key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: join(work, 'f2') }).then(() => null, (e: unknown) => e);
    expect(short).toBeInstanceOf(BackupError);
    expect(['CORRUPT', 'NOT_A_BACKUP']).toContain((short as BackupError).code);
    writeFileSync(join(work, 'text.pgp'), 'just some text\n');
    await refused(restore({ file: join(work, 'text.pgp'), key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: join(work, 'f3') }), 'NOT_A_BACKUP');
    for (const d of ['f1', 'f2', 'f3']) expect(existsSync(join(work, d))).toBe(false);
  }, SLOW);
});

/** A bundle made by hand, encrypted to the operator, as a backup of another version or a damaged one would be. */
async function craftedBackup(name: string, db: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  const files = [{ name: 'letterlock.db', data: db }];
  const manifest = { format: 'letterlock-backup', version: 1, createdAt: new Date().toISOString(), schemaVersion: 0, files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex') })) };
  const tar = packTar([{ name: 'letterlock-backup.json', data: Buffer.from(JSON.stringify(manifest)) }, ...files]);
  const key = await openpgp.readKey({ armoredKey: readFileSync(operatorPublic, 'utf8') });
  const sealed = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: tar }), encryptionKeys: key, format: 'binary' });
  const path = join(work, name);
  writeFileSync(path, sealed);
  return path;
}

describe('restore checks what is inside', () => {
  it('copies the SQLite file the database setting names, and restores it as letterlock.db without that setting', async () => {
    const folder = join(work, 'named-file');
    await initData(folder, sink.port, { database: 'other.db' });
    await addList(folder, 'named@lists.test', {}, [alice]);
    expect(existsSync(join(folder, 'other.db'))).toBe(true);
    expect(existsSync(join(folder, 'letterlock.db'))).toBe(false);
    const r = await backup({ dataDir: folder, to: operatorPublic, out: join(work, 'named.pgp') });
    const target = join(work, 'named-restored');
    const back = await restore({ file: r.file, key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: target });
    // Left in place, the setting would have the restored server open other.db (absent) and ignore the restored file.
    expect(back.notes.join('\n')).toContain('database is removed');
    expect(loadConfig(target).config.database).toBeUndefined();
    const sql = await openData(target, SECRET);
    try {
      const list = await getList(sql, 'named@lists.test');
      expect(list).toBeDefined();
      expect(await countMembers(sql, list!.id)).toBe(1);
    } finally {
      await sql.close();
    }
  }, SLOW);

  it('refuses a database from a newer Letterlock (its schema version), and creates nothing', async () => {
    const folder = join(work, 'future');
    await initData(folder, sink.port);
    const raw = new Database(join(folder, 'letterlock.db'));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    // backup copies it as it is (the operator may want it kept); restore is where it is refused.
    const r = await backup({ dataDir: folder, to: operatorPublic, out: join(work, 'future.pgp') });
    expect(r.schemaVersion).toBe(SCHEMA_VERSION + 1);
    const e = await refused(restore({ file: r.file, key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: join(work, 'future-restored') }), 'SCHEMA_TOO_NEW');
    expect(e.message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
    expect(existsSync(join(work, 'future-restored'))).toBe(false);
  }, SLOW);

  it('refuses a database that fails the integrity check, at backup and at restore', async () => {
    const folder = join(work, 'damaged');
    await initData(folder, sink.port);
    const path = join(folder, 'letterlock.db');
    const db = openDb(path);
    db.pragma('journal_mode = DELETE');
    db.exec('CREATE TABLE filler (x TEXT); ');
    const ins = db.prepare('INSERT INTO filler VALUES (?)');
    for (let i = 0; i < 400; i++) ins.run('x'.repeat(500));
    db.exec('CREATE INDEX filler_x ON filler(x)');
    db.close();
    // Garbage over pages in the middle: the tables still open, the check finds it.
    const bytes = readFileSync(path);
    const page = 4096;
    const pages = bytes.length / page;
    for (let p = Math.floor(pages / 2); p < Math.floor(pages / 2) + 3; p++) bytes.fill(0x5a, p * page + 8, (p + 1) * page);
    writeFileSync(path, bytes);
    await refused(backup({ dataDir: folder, to: operatorPublic, out: join(work, 'damaged.pgp') }), 'DB_DAMAGED');
    expect(existsSync(join(work, 'damaged.pgp'))).toBe(false);
    expect(readdirSync(folder).filter((n) => n.startsWith('.backup-'))).toEqual([]);
    const crafted = await craftedBackup('crafted-damaged.pgp', bytes);
    await refused(restore({ file: crafted, key: operatorSecret, passphrase: OPERATOR_PASS, dataDir: join(work, 'damaged-restored') }), 'CORRUPT');
    expect(existsSync(join(work, 'damaged-restored'))).toBe(false);
  }, SLOW);
});
