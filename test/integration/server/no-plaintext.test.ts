// DESIGN.md rule 1, proven: posts carrying a unique marker go through every path
// (accepted, held then approved, refused, relay down then recovered, SIGKILL
// during delivery and restart) on a server run as a child process whose TMPDIR is
// a folder the test owns. Afterwards every file under the data folder, the logs
// and that temporary folder is scanned, raw and decoded: the marker is nowhere.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { openData } from '../../../server/app.ts';
import { addList, compose, initData, listPublicKey, person, seedMembers, send, Sink, SECRET, spawnServer, stopChild, tempDir, type Child, type Person } from './harness.ts';
import { findMarker, listFiles, scan, scanDatabase } from './scan.ts';
import { unsignedPost } from './policy-mail.ts';
import pgClient from 'pg';
import { onPostgres, testPostgres } from '../../support/test-store.ts';

const MARKER = `LLMARK${randomBytes(6).toString('hex').toUpperCase()}`;
const OPEN = 'open@lists.test';
const MOD = 'mod@lists.test';
const BIG = 'big@lists.test';

let root = '';
let sink: Sink | null = null;
let child: Child | null = null;

afterAll(async () => {
  if (child) await stopChild(child, 'SIGKILL');
  await sink?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The marker in the body, the protected subject and the outer Subject a webmail user might type. */
async function markedPost(from: Person, list: string, path: string): Promise<string> {
  const key = await listPublicKey(join(root, 'data'), list);
  const raw = await compose(from, list, key, `Body of the ${path} post: ${MARKER} (${path})\n`, `${MARKER} subject ${path}`);
  return raw.replace(/^Subject: \.\.\.$/m, `Subject: outer ${MARKER} ${path}`);
}

it('no plaintext of any post is left in the data folder, the logs or the temporary folder', async () => {
  root = tempDir('noplain');
  const dataDir = join(root, 'data');
  const childTmp = join(root, 'tmp');
  mkdirSync(childTmp);
  const env = { TMPDIR: childTmp };
  sink = new Sink();
  const relayPort = await sink.start();
  await initData(dataDir, relayPort);
  const [alice, bob, mallory] = await Promise.all([person('alice@example.org'), person('bob@example.org'), person('mallory@example.org')]);
  await addList(dataDir, OPEN, { owner: 'owner@example.org' }, [alice, bob]);
  await addList(dataDir, MOD, { owner: 'owner@example.org', postPolicy: 'moderated' }, [alice, bob]);
  await addList(dataDir, BIG, { owner: 'owner@example.org' }, [alice, bob]);
  await seedMembers(dataDir, BIG, 600, [alice, bob]);
  const copies = (list: string) => sink!.messages.filter((m) => m.from.startsWith(`${list.split('@')[0]}+bounces-`));

  child = await spawnServer(dataDir, env);
  // 1. accepted
  await send(child.smtpPort, alice.address, OPEN, await markedPost(alice, OPEN, 'accepted'));
  await sink.waitFor(() => copies(OPEN).length >= 2, 20_000, 'accepted copies');
  // 2. refused at SMTP time (550 with the reason, no bounce): a non-member and an unsigned post
  await expect(send(child.smtpPort, mallory.address, OPEN, await markedPost(mallory, OPEN, 'refused'))).rejects.toMatchObject({ responseCode: 550 });
  const unsigned = (await unsignedPost(alice.address, OPEN, await listPublicKey(dataDir, OPEN), `unsigned ${MARKER}`)).replace(/^Subject: \.\.\.$/m, `Subject: ${MARKER}`);
  await expect(send(child.smtpPort, alice.address, OPEN, unsigned)).rejects.toMatchObject({ responseCode: 550 });
  // 2b. refused later, by a moderator: the one path that still bounces
  await send(child.smtpPort, alice.address, MOD, await markedPost(alice, MOD, 'rejected'));
  // 3. held, then approved with the CLI (its TMPDIR is scanned too)
  await send(child.smtpPort, alice.address, MOD, await markedPost(alice, MOD, 'held'));
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', '--data', dataDir, ...args], {
    cwd: join(import.meta.dirname, '..', '..', '..'), env: { ...process.env, LETTERLOCK_SECRET: SECRET, ...env }, encoding: 'utf8',
  });
  const rejectId = /^(\d+)\s/m.exec(cli(['held', 'list']).stdout)?.[1];
  expect(rejectId).toBeDefined();
  expect(cli(['held', 'reject', rejectId!]).status).toBe(0);
  await sink.waitFor(() => sink!.to(alice.address).some((m) => m.from === '' && m.raw.includes('was not delivered')), 20_000, 'the rejection bounce');
  const heldId = /^(\d+)\s/m.exec(cli(['held', 'list']).stdout)?.[1];
  expect(heldId).toBeDefined();
  expect(cli(['held', 'approve', heldId!]).status).toBe(0);
  await sink.waitFor(() => copies(MOD).length >= 2, 20_000, 'approved copies');
  // 4. relay down, then recovered
  await sink.stop();
  await send(child.smtpPort, bob.address, OPEN, await markedPost(bob, OPEN, 'relay-down'));
  const sql = await openData(dataDir, SECRET);
  const retried = async () => ((await sql.get("SELECT count(*) AS n FROM deliveries WHERE attempts > 0 AND state = 'queued'")) as { n: number }).n;
  await sink.waitFor(async () => (await retried()) >= 2, 20_000, 'retries while the relay is down');
  await sql.close();
  const before = copies(OPEN).length;
  await sink.start(relayPort);
  await sink.waitFor(() => copies(OPEN).length >= before + 2, 30_000, 'delivery after the relay came back');
  // 5. SIGKILL during delivery, then restart
  await send(child.smtpPort, alice.address, BIG, await markedPost(alice, BIG, 'killed'));
  await sink.waitFor(() => copies(BIG).length >= 50, 30_000, 'delivery under way');
  await stopChild(child, 'SIGKILL');
  expect(copies(BIG).length).toBeLessThan(602);
  child = await spawnServer(dataDir, env);
  await sink.waitFor(() => new Set(copies(BIG).flatMap((m) => m.to)).size >= 602, 60_000, 'all copies after restart');
  await stopChild(child);
  const logFile = join(root, 'server-output.log');
  writeFileSync(logFile, child.output());
  child = null;

  // The sink holds only ciphertext too (it stands for the subscribers' MTAs).
  for (const m of sink.messages) expect(findMarker(m.raw, MARKER), `${m.from} -> ${m.to}`).toBeNull();

  const roots = [root]; // holds the data folder (with logs/), the child's TMPDIR and its captured output
  // On PostgreSQL the database lives in the cluster's folder: written out (CHECKPOINT: tables,
  // and the WAL that already holds every change) and scanned too. Values PostgreSQL compresses
  // (TOAST, over about 2 KB) are not in clear in those files: every value of every column is
  // also read back through SQL, decompressed, below.
  if (onPostgres) {
    const pg = await testPostgres();
    const c = new pgClient.Client({ connectionString: `${pg.base}/postgres` });
    await c.connect();
    await c.query('CHECKPOINT');
    await c.end();
    roots.push(pg.dir);
  }
  // Control: the scan finds the marker raw and base64-encoded (folded), and quoted-printable.
  const controls = [
    join(childTmp, 'control-raw.txt'), join(childTmp, 'control-b64.txt'), join(dataDir, 'control-qp.txt'),
  ];
  writeFileSync(controls[0]!, `xx ${MARKER} yy`);
  writeFileSync(controls[1]!, Buffer.from(`abc${MARKER}def`.repeat(3)).toString('base64').replace(/(.{20})/g, '$1\r\n'));
  writeFileSync(controls[2]!, `Subject: =?x?= ${MARKER.slice(0, 5)}=\r\n${MARKER.slice(5, 8)}=${MARKER.charCodeAt(8).toString(16).toUpperCase()}${MARKER.slice(9)}`);
  const found = scan(roots, MARKER);
  expect(found.map((f) => f.how).sort()).toEqual(['base64', 'quoted-printable', 'raw']);
  for (const c of controls) unlinkSync(c);

  const hits = scan(roots, MARKER);
  expect(hits).toEqual([]);
  if (onPostgres) {
    // Every value of the server's database through SELECT (TOAST-compressed values included).
    const url = (JSON.parse(readFileSync(join(dataDir, 'letterlock.json'), 'utf8')) as { database?: string }).database;
    expect(url).toMatch(/^postgres:/);
    // Control: a marked value long and repetitive enough to be stored compressed is found.
    const c = new pgClient.Client({ connectionString: url });
    await c.connect();
    await c.query('CREATE TABLE scan_control (v text)');
    await c.query('INSERT INTO scan_control VALUES ($1)', [`pad ${MARKER} `.repeat(400)]);
    const stored = await c.query<{ raw: number; kept: number }>("SELECT octet_length(v) AS raw, pg_column_size(v) AS kept FROM scan_control");
    expect(stored.rows[0]!.kept, 'the control value is stored compressed').toBeLessThan(stored.rows[0]!.raw / 4);
    const control = await scanDatabase(url!, MARKER);
    expect(control.hits).toEqual([{ column: 'scan_control.v', how: 'raw' }]);
    await c.query('DROP TABLE scan_control');
    await c.end();
    const db = await scanDatabase(url!, MARKER);
    expect(db.hits).toEqual([]);
    expect(db.values).toBeGreaterThan(1000); // 600+ members, their deliveries, the posts
    console.log(`no-plaintext: read ${db.values} values of ${db.tables} tables through SQL; marker found in none`);
  }
  const scanned = roots.flatMap((r) => listFiles(r));
  if (onPostgres) expect(scanned.some((f) => f.includes('/base/'))).toBe(true); // the cluster's table files
  else expect(scanned.some((f) => f.endsWith('letterlock.db'))).toBe(true);
  expect(scanned.some((f) => f.endsWith('server.log'))).toBe(true);
  console.log(`no-plaintext: scanned ${scanned.length} files (data folder, logs, TMPDIR${onPostgres ? ', the PostgreSQL cluster' : ''}); marker ${MARKER} found nowhere`);
}, 600_000); // six paths, two server starts and 600 copies: minutes on a busy 2-core machine
