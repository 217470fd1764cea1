// Commands by mail to a list's -request address, as a member who uses only gpg
// sends them: every request is signed and encrypted by the real gpg, goes in
// over SMTP, and every answer at the sink is decrypted and verified by gpg.
// Refusals are the same 550, member or not, and nothing is mailed for them.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPgpMimeMail, formatDate, newMessageId } from '../../../shared/index.ts';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { MAX_REQUESTS_PER_HOUR, REQUEST_REFUSAL } from '../../../server/commands/request.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { getList } from '../../../server/store/lists.ts';
import { getMember } from '../../../server/store/members.ts';
import { addRateEvent, getDeliveryPreference } from '../../../server/store/registry.ts';
import type { Sql } from '../../../server/store/sql.ts';
import { Gpg } from '../../support/gpg.ts';
import { scan } from './scan.ts';
import { addList, compose, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person, type SinkMessage } from './harness.ts';

const NEWS = 'news@lists.example.org';
const REQUEST = 'news-request@lists.example.org';
const PASS = 'gpg-pass';

interface GpgMember {
  address: string;
  gpg: Gpg;
  fingerprint: string;
  publicKey: string;
}

let sink: Sink;
let dataDir: string;
let server: RunningServer;
let listFpr: string;
let listArmored: string;
let bob: Person; // posts (openpgp.js), so members have a signature to check
let alice: GpgMember, dave: GpgMember, erin: GpgMember, mallory: GpgMember;

async function gpgMember(address: string): Promise<GpgMember> {
  const gpg = new Gpg();
  const k = await gpg.generateKey(address.split('@')[0]!, address, PASS);
  await gpg.importKey(listArmored);
  return { address, gpg, fingerprint: k.fingerprint, publicKey: k.publicKey };
}

async function db<T>(f: (d: Sql, listId: number) => T | Promise<T>): Promise<T> {
  const d = await openData(dataDir, SECRET);
  try {
    return await f(d, (await getList(d, NEWS))!.id);
  } finally {
    await d.close();
  }
}

function header(m: SinkMessage, name: string): string | null {
  const head = m.raw.toString('utf8').split(/\r\n\r\n/)[0]!.replace(/\r\n[ \t]+/g, ' ');
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line ? line.slice(name.length + 1).trim() : null;
}

const answersTo = (address: string) => sink.to(address).filter((m) => header(m, 'From') === `<${REQUEST}>`);
const copiesTo = (address: string) => sink.to(address).filter((m) => header(m, 'List-Post') !== null);

/** The request as gpg makes it: the text signed (by `signer`, default the member's key) and encrypted to the list key. */
async function request(m: GpgMember, body: string, options: { signer?: string; sign?: boolean; encrypt?: boolean; from?: string } = {}): Promise<string> {
  const file = m.gpg.file(`req-${Date.now()}-${Math.random()}.txt`, body);
  const args = ['--armor', '--output', '-'];
  if (options.encrypt === false) args.push('--local-user', options.signer ?? m.fingerprint, '--clearsign');
  else {
    if (options.sign !== false) args.push('--local-user', options.signer ?? m.fingerprint, '--sign');
    args.push('--recipient', listFpr, '--encrypt');
  }
  const r = await m.gpg.mustRun([...args, file], undefined, PASS);
  const headers: Array<[string, string]> = [
    ['From', `<${options.from ?? m.address}>`], ['To', `<${REQUEST}>`], ['Subject', '...'], ['Date', formatDate(new Date())],
    ['Message-ID', newMessageId('example.org')],
  ];
  if (options.encrypt === false) {
    return `${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${r.stdout.toString().replace(/\r?\n/g, '\r\n')}`;
  }
  return buildPgpMimeMail(headers, r.stdout.toString());
}

/** Sends a request and returns its answer, decrypted and verified by the member's gpg. */
async function ask(m: GpgMember, raw: string): Promise<{ text: string; keys: string | null; status: string[] }> {
  const before = answersTo(m.address).length;
  const reply = await send(server.smtpPort, m.address, REQUEST, raw);
  expect(reply).toMatch(/^250 .*request done/);
  await sink.waitFor(() => answersTo(m.address).length > before, 30_000, `answer to ${m.address}`);
  const answer = answersTo(m.address).at(-1)!;
  expect(header(answer, 'Content-Type')).toMatch(/^multipart\/encrypted; protocol="application\/pgp-encrypted"/);
  expect(answer.raw.toString()).toMatch(/\r\n=[A-Za-z0-9+/]{4}\r\n-----END PGP MESSAGE-----/); // the CRC line GnuPG 2.2 needs
  const r = await m.gpg.run(['--decrypt'], answer.raw, PASS);
  expect(r.code, r.stderr).toBe(0);
  // Signed by the list key: VALIDSIG ends with the primary key's fingerprint.
  expect(r.status.some((s) => s.startsWith('GOODSIG '))).toBe(true);
  expect(r.status.some((s) => s.startsWith('VALIDSIG ') && s.trim().endsWith(listFpr))).toBe(true);
  const mail = await PostalMime.parse(r.stdout, { attachmentEncoding: 'utf8' });
  const key = (mail.attachments ?? []).find((a) => a.mimeType === 'application/pgp-keys');
  return { text: mail.text ?? '', keys: key ? String(key.content) : null, status: r.status };
}

/** Sends a request that must be refused: the one 550, and nothing queued for anyone. */
async function refused(raw: string, envelopeFrom: string): Promise<string> {
  const rows = await db(async (d) => ((await d.get('SELECT count(*) AS n FROM deliveries')) as { n: number }).n);
  const error = await send(server.smtpPort, envelopeFrom, REQUEST, raw).then(() => null, (e: Error & { responseCode?: number; response?: string }) => e);
  expect(error, 'the request was accepted').not.toBeNull();
  expect(error!.responseCode).toBe(550);
  expect(await db(async (d) => ((await d.get('SELECT count(*) AS n FROM deliveries')) as { n: number }).n)).toBe(rows);
  return error!.response!;
}

async function postByBob(text: string): Promise<void> {
  const before = copiesTo(alice.address).length;
  const reply = await send(server.smtpPort, bob.address, NEWS, await compose(bob, NEWS, await listPublicKey(dataDir, NEWS), text));
  expect(reply).toMatch(/^250 .*accepted/);
  await sink.waitFor(() => copiesTo(alice.address).length > before, 30_000, 'the copy to alice');
}

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('it-request');
  await initData(dataDir, sink.port);
  bob = await person('bob@example.org');
  await addList(dataDir, NEWS, { owner: 'owner@example.org' }, [bob]);
  const listKey = await listPublicKey(dataDir, NEWS);
  listFpr = listKey.getFingerprint().toUpperCase();
  listArmored = listKey.armor();
  [alice, dave, erin, mallory] = await Promise.all([gpgMember('alice@example.org'), gpgMember('dave@example.org'), gpgMember('erin@example.org'), gpgMember('mallory@example.org')]);
  const d = await openData(dataDir, SECRET);
  try {
    for (const m of [alice, dave, erin]) await registerMember(d, (await getList(d, NEWS))!.id, m.address, m.publicKey);
  } finally {
    await d.close();
  }
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: 'debug', stdout: false }) });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  for (const m of [alice, dave, erin, mallory]) m?.gpg.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('commands by mail', () => {
  it('x-help: the answer is signed by the list key, encrypted to the member, and lists the commands', async () => {
    const a = await ask(alice, await request(alice, 'X-HELP\n'));
    for (const c of ['x-list-members', 'x-fetch-key', 'x-fetch-keys', 'x-delivery', 'x-replace-key', 'x-unsubscribe']) expect(a.text).toContain(c);
    const encTo = a.status.filter((s) => s.startsWith('ENC_TO '));
    expect(encTo).toHaveLength(1); // to the requester alone
  });

  it('x-list-members: every address with its fingerprint', async () => {
    const a = await ask(alice, await request(alice, 'x-list-members\n'));
    for (const m of [alice, dave, erin]) expect(a.text).toContain(`${m.address} ${m.fingerprint}`);
    expect(a.text).toContain(`${bob.address} ${bob.publicKey.getFingerprint().toUpperCase()}`);
    expect(a.text).toContain('(4 members)');
  });

  it('x-fetch-key: the fetched key imports into gpg and verifies a post\'s signature', async () => {
    await postByBob('A post whose signature alice checks\n');
    const copy = copiesTo(alice.address).at(-1)!;
    const bobSigner = bob.publicKey.getKeyID().toHex().toUpperCase();
    const without = await alice.gpg.run(['--decrypt'], copy.raw, PASS);
    expect(without.status.some((s) => s.startsWith(`GOODSIG ${bobSigner}`))).toBe(false); // alice lacks bob's key yet

    const a = await ask(alice, await request(alice, 'x-fetch-key bob@example.org\n'));
    expect(a.text).toContain(bob.publicKey.getFingerprint().toUpperCase());
    expect(a.keys).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    await alice.gpg.mustRun(['--import'], a.keys!);
    // Only the signature is asserted here: the copies' armor and exit status are issue 9 item 2's tests.
    const withKey = await alice.gpg.run(['--decrypt'], copy.raw, PASS);
    expect(withKey.status.some((s) => s.startsWith('VALIDSIG ') && s.trim().endsWith(bob.publicKey.getFingerprint().toUpperCase()))).toBe(true);
    expect(withKey.status.some((s) => s.startsWith(`GOODSIG ${bobSigner}`))).toBe(true);
  });

  it('x-fetch-keys: every member\'s key in one attachment; x-fetch-key by fingerprint; unknown names answered', async () => {
    const a = await ask(dave, await request(dave, `x-list-name ${NEWS}\nx-fetch-keys\nx-fetch-key ${erin.fingerprint.replace(/(.{4})/g, '$1 ').trim()}\nx-fetch-key nobody@example.org\n`));
    expect(a.text).toContain('4 keys are attached');
    expect(a.text).toContain('No member of this list has that address or fingerprint.');
    const r = await dave.gpg.mustRun(['--import', '--import-options', 'show-only', '--with-colons'], a.keys!);
    const fprs = r.stdout.toString().split('\n').filter((l) => l.startsWith('fpr:')).map((l) => l.split(':')[9]);
    for (const f of [alice.fingerprint, erin.fingerprint, bob.publicKey.getFingerprint().toUpperCase()]) expect(fprs).toContain(f);
  });

  it('requests in the other shapes clients send: RFC 3156 §6.1 (multipart/signed, then encrypted) and inline armor', async () => {
    // gpgme clients (Evolution, KMail, Mutt): a detached signature over the MIME entity, the whole encrypted.
    const entity = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nx-list-members\r\n';
    const sig = await erin.gpg.mustRun(['--armor', '--detach-sign', '--local-user', erin.fingerprint, '--output', '-', erin.gpg.file('entity.txt', entity)], undefined, PASS);
    const signed = `Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="sig"\r\n\r\n` +
      `--sig\r\n${entity}\r\n--sig\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n${sig.stdout.toString().replace(/\r?\n/g, '\r\n')}\r\n--sig--\r\n`;
    const enc = await erin.gpg.mustRun(['--armor', '--recipient', listFpr, '--encrypt', '--output', '-', erin.gpg.file('signed.eml', signed)]);
    const headers: Array<[string, string]> = [['From', `<${erin.address}>`], ['To', `<${REQUEST}>`], ['Subject', '...'], ['Date', formatDate(new Date())], ['Message-ID', newMessageId('example.org')]];
    const a = await ask(erin, buildPgpMimeMail(headers, enc.stdout.toString()));
    expect(a.text).toContain(`${alice.address} ${alice.fingerprint}`);

    // Webmail: the armored block pasted into a text/plain body.
    const inline = await request(erin, 'x-help\n');
    const armor = /-----BEGIN PGP MESSAGE-----[\s\S]+-----END PGP MESSAGE-----/.exec(inline)![0];
    const b = await ask(erin, `${headers.map(([k, v]) => `${k}: ${k === 'Message-ID' ? newMessageId('example.org') : v}`).join('\r\n')}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${armor}\r\n`);
    expect(b.text).toContain('x-replace-key');
  });

  it('x-delivery inline: the next post arrives inline, and pgp-mime switches back', async () => {
    expect(await db((d, id) => getDeliveryPreference(d, id, alice.address))).toBe('pgp-mime');
    const a = await ask(alice, await request(alice, 'x-delivery inline\n'));
    expect(a.text).toContain('inline PGP');
    await postByBob('after the switch to inline\n');
    const inline = copiesTo(alice.address).at(-1)!;
    expect(header(inline, 'Content-Type')).toMatch(/^text\/plain/);
    expect(inline.raw.toString()).toMatch(/\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n/);
    const r = await alice.gpg.run(['--decrypt'], inline.raw.toString().split(/\r\n\r\n/).slice(1).join('\r\n\r\n'), PASS);
    expect(r.status).toContain('DECRYPTION_OKAY');

    await ask(alice, await request(alice, 'x-delivery PGP-MIME\n'));
    await postByBob('after the switch back\n');
    expect(header(copiesTo(alice.address).at(-1)!, 'Content-Type')).toMatch(/^multipart\/encrypted/);
  });

  it('refuses unsigned, not encrypted, wrongly signed and non-member requests with one and the same 550', async () => {
    const answers = [
      await refused(await request(alice, 'x-list-members\n', { sign: false }), alice.address), // unsigned
      await refused(await request(alice, 'x-list-members\n', { encrypt: false }), alice.address), // signed, not encrypted
      await refused(await request(mallory, 'x-list-members\n'), mallory.address), // a stranger
      await refused(await request(mallory, 'x-list-members\n', { sign: false }), mallory.address), // a stranger, unsigned
      await refused(await request(mallory, 'x-list-members\n', { from: alice.address }), mallory.address), // a stranger as a member
      await refused(await request(mallory, 'x-list-members\n', { encrypt: false }), mallory.address),
    ];
    const texts = answers.map((a) => a.replace(/^550[ -]/gm, '').replace(/\r?\n/g, ' ').trim());
    expect(new Set(texts).size).toBe(1);
    expect(texts[0]).toContain(REQUEST_REFUSAL.slice(6, 60));
    for (const t of texts) {
      expect(t).not.toContain(listFpr);
      expect(t).not.toMatch(/alice|bob|dave|erin|mallory/);
    }
  });

  it('a replayed request is refused like any other', async () => {
    const raw = await request(erin, 'x-help\n');
    await ask(erin, raw);
    await refused(raw, erin.address);
  });

  it('x-replace-key: signed by the new key alone is refused; signed by the old key it replaces the key', async () => {
    // A second key for the same address, in alice's own keyring.
    const r = await alice.gpg.mustRun(['--quick-generate-key', 'alice new <alice@example.org>', 'ed25519', 'sign', '0'], undefined, PASS);
    const newFpr = /KEY_CREATED \w (\w+)/.exec(r.stderr)![1]!;
    await alice.gpg.mustRun(['--quick-add-key', newFpr, 'cv25519', 'encr', '0'], undefined, PASS);
    const newKey = (await alice.gpg.mustRun(['--armor', '--export', newFpr])).stdout.toString();

    await refused(await request(alice, `x-replace-key\n\n${newKey}`, { signer: newFpr }), alice.address);
    expect(await db(async (d, id) => (await getMember(d, id, alice.address))!.fingerprint)).toBe(alice.fingerprint);

    // The new key as an attachment of a MIME entity, the whole signed by the old key.
    const boundary = 'b-replace';
    const entity = `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\nx-replace-key\r\n--${boundary}\r\n` +
      `Content-Type: application/pgp-keys; name="new.asc"\r\nContent-Disposition: attachment; filename="new.asc"\r\n\r\n${newKey.replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`;
    const a = await ask(alice, await request(alice, entity));
    expect(a.text).toContain(`Your key is now ${newFpr}`);
    expect(a.status.filter((s) => s.startsWith('ENC_TO '))).toHaveLength(2); // the old key and the new
    expect(await db(async (d, id) => (await getMember(d, id, alice.address))!.fingerprint)).toBe(newFpr);

    // The old key no longer speaks for alice; the new one does.
    await refused(await request(alice, 'x-help\n'), alice.address);
    const next = await ask(alice, await request(alice, 'x-help\n', { signer: newFpr }));
    expect(next.status.filter((s) => s.startsWith('ENC_TO '))).toHaveLength(1);
  });

  it('x-replace-key with a key for another address is refused by the key policy', async () => {
    const a = await ask(erin, await request(erin, `x-replace-key\n\n${mallory.publicKey}`));
    expect(a.text).toContain('KEY_USERID_MISMATCH');
    expect(await db(async (d, id) => (await getMember(d, id, erin.address))!.fingerprint)).toBe(erin.fingerprint);
  });

  it('an unknown command, or x-list-name naming another list: none runs', async () => {
    const a = await ask(erin, await request(erin, 'x-delivery inline\nx-frobnicate\n'));
    expect(a.text).toContain('unknown command x-frobnicate');
    expect(a.text).toContain('None of the commands in your message was run');
    const b = await ask(erin, await request(erin, 'X-List-Name: other@lists.example.org\nx-delivery inline\n'));
    expect(b.text).toContain('None of the commands in your message was run');
    expect(await db((d, id) => getDeliveryPreference(d, id, erin.address))).toBe('pgp-mime');
  });

  it('more than 20 commands: none runs', async () => {
    const a = await ask(erin, await request(erin, `${'x-list-members\n'.repeat(20)}x-unsubscribe\n`));
    expect(a.text).toContain('none of them was run');
    expect(await db((d, id) => getMember(d, id, erin.address))).not.toBeNull();
  });

  it('no plaintext of a request or an answer is left in the data folder or the log', async () => {
    const marker = `REQMARKER${Date.now()}`;
    await ask(erin, await request(erin, `x-fetch-key ${marker}@example.org\nx-help\n\n${marker} below the commands\n`));
    await refused(await request(mallory, `x-help\n${marker}\n`), mallory.address);
    // Control: the scan reads the log (its event names are there).
    expect(scan([dataDir], 'request.answered').length).toBeGreaterThan(0);
    expect(scan([dataDir], marker)).toEqual([]);
  });

  it(`more than ${MAX_REQUESTS_PER_HOUR} requests in an hour: 451, so the sender's MTA tries again later`, async () => {
    const key = await db((_d, id) => `${id}:${erin.address}`);
    const now = Date.now();
    // The hour's budget used up (as 30 earlier requests would), straight in the server's database.
    await db(async (d) => { for (let i = 0; i < MAX_REQUESTS_PER_HOUR; i++) await addRateEvent(d, 'request', key, now - 1000, now + 3_600_000); });
    const raw = await request(erin, 'x-help\n');
    const error = await send(server.smtpPort, erin.address, REQUEST, raw).then(() => null, (e: Error & { responseCode?: number; response?: string }) => e);
    expect(error?.responseCode).toBe(451);
    expect(error?.response).toMatch(/4\.7\.1 More than 30 requests in an hour/);
    // Not recorded as done: the same mail goes through once the budget is back.
    await db(async (d) => (await d.run('DELETE FROM rate_events WHERE bucket = ? AND key = ?', ['request', key])));
    await ask(erin, raw);
  });

  it('x-unsubscribe removes the member, who gets no more posts and can no longer ask', async () => {
    const a = await ask(dave, await request(dave, 'x-unsubscribe\nx-list-members\n'));
    expect(a.text).toContain('You have left');
    expect(a.text).not.toContain(alice.address); // nothing runs after leaving
    expect(await db((d, id) => getMember(d, id, dave.address))).toBeNull();
    const daveCopies = copiesTo(dave.address).length;
    const erinCopies = copiesTo(erin.address).length;
    await postByBob('after dave left\n');
    await sink.waitFor(() => copiesTo(erin.address).length > erinCopies, 30_000, 'the copy to erin');
    expect(copiesTo(dave.address)).toHaveLength(daveCopies);
    await refused(await request(dave, 'x-help\n'), dave.address);
  });
});
