// How copies show a post before it is opened (issue 9): the author "via" the
// list in From (Mailman's DMARC mitigation), Reply-To as the list chose, the
// subject the sender sent in clear when the signed content has no protected one
// (or "..." when the list hides subjects), and bare-text posts delivered inline to
// everyone. The author's name and a clear subject are kept only sealed to the
// list key: a marker in them is found nowhere in the data folder.

import { readFileSync, rmSync } from 'node:fs';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublicKey } from 'openpgp';
import { loadConfig } from '../../../server/config/config.ts';
import { startServer, type RunningServer } from '../../../server/app.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { buildInlineMail, buildPgpMimeMail, composePost, encryptInner, readMail, utf8 } from '../../../shared/index.ts';
import { addList, initData, listPublicKey, person, send, Sink, tempDir, type Person, type SinkMessage } from './harness.ts';
import { listFiles, readListed } from './scan.ts';

const SHOW = 'show@lists.test';
const HIDE = 'hide@lists.test';
let sink: Sink;
let server: RunningServer;
let dataDir = '';
let alice: Person, bob: Person;
const keys: Record<string, PublicKey> = {};

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('display');
  await initData(dataDir, sink.port);
  [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  await addList(dataDir, SHOW, {}, [alice, bob]);
  await addList(dataDir, HIDE, {}, [alice, bob]);
  for (const l of [SHOW, HIDE]) keys[l] = await listPublicKey(dataDir, l);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, 'integration-test-secret-0123456789', { log: createEventLog({ file: `${dataDir}/logs/server.log`, stdout: false }) });
  // The operator's settings: one list hides clear subjects (replies go to the list, the
  // default); the other sends replies to the author.
  const token = readFileSync(`${dataDir}/admin-token`, 'utf8').trim();
  const r = await fetch(`http://127.0.0.1:${server.httpPort}/v1/admin/lists/${HIDE}/settings`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ hideSubjects: true }),
  });
  expect(r.status).toBe(200);
  const r2 = await fetch(`http://127.0.0.1:${server.httpPort}/v1/admin/lists/${SHOW}/settings`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ replyTo: 'author' }),
  });
  expect(r2.status).toBe(200);
});

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function copyTo(rcpt: string, marker: string): Promise<SinkMessage> {
  const find = () => sink.to(rcpt).find((m) => m.from.includes('+bounces-') && m.raw.includes(marker));
  await sink.waitFor(() => find() !== undefined, 30_000, `a copy to ${rcpt}`);
  return find()!;
}

/** A post as a client without protected headers sends it: the signed content is a MIME entity with no Subject. */
async function plainMimePost(from: Person, name: string, list: string, subject: string, text: string, messageId: string): Promise<string> {
  const inner = utf8(`Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}\r\n`);
  const armored = await encryptInner(inner, from.privateKey, keys[list]!);
  return buildPgpMimeMail([['From', `${name} <${from.address}>`], ['To', `<${list}>`], ['Subject', subject], ['Message-ID', messageId]], armored);
}

describe('what a copy shows before it is opened', () => {
  it('a post with protected headers: the author via the list, Reply-To the author (as set), Subject "..." (the real one is inside)', async () => {
    const marker = `prot-${Date.now()}`;
    const post = await composePost({
      message: { subject: `Protected ${marker}`, from: { address: alice.address, name: 'Alice Example' }, to: [{ address: SHOW }], text: 'hello' },
      senderKey: alice.privateKey, listKey: keys[SHOW]!,
    });
    const raw = post.pgpMime.replace('Message-ID:', `X-Test: ${marker}\r\nMessage-ID:`);
    expect(await send(server.smtpPort, alice.address, SHOW, raw)).toMatch(/^250/);
    const copy = await copyTo(bob.address, post.messageId);
    const head = await PostalMime.parse(copy.raw);
    expect(head.from).toEqual({ name: 'Alice Example via show', address: SHOW });
    expect(head.replyTo).toEqual([{ name: 'Alice Example', address: alice.address }]);
    expect(head.subject).toBe('...');
    const read = await readMail(copy.raw, { privateKey: bob.privateKey, senderKeys: [alice.publicKey] });
    expect(read.verification.valid).toBe(true);
    expect(read.message.subject).toBe(`Protected ${marker}`);
  });

  it('a post without protected headers: the subject sent in clear is shown, with the clear From name', async () => {
    const id = `<clear-${Date.now()}@example.org>`;
    const raw = await plainMimePost(bob, 'Bob Builder', SHOW, 'Grüße: the clear subject', 'no protected headers here', id);
    expect(await send(server.smtpPort, bob.address, SHOW, raw)).toMatch(/^250/);
    const copy = await copyTo(alice.address, id);
    const head = await PostalMime.parse(copy.raw);
    expect(head.subject).toBe('Grüße: the clear subject');
    expect(head.from).toEqual({ name: 'Bob Builder via show', address: SHOW });
    expect(head.messageId).toBe(id);
    const read = await readMail(copy.raw, { privateKey: alice.privateKey, senderKeys: [bob.publicKey] });
    expect(read.verification.valid).toBe(true);
  });

  it('a list that hides subjects shows "..."; replies go to the list by default', async () => {
    const id = `<hide-${Date.now()}@example.org>`;
    const raw = await plainMimePost(bob, 'Bob Builder', HIDE, 'Hidden clear subject', 'body', id);
    expect(await send(server.smtpPort, bob.address, HIDE, raw)).toMatch(/^250/);
    const copy = await copyTo(alice.address, id);
    const head = await PostalMime.parse(copy.raw);
    expect(head.subject).toBe('...');
    expect(head.replyTo).toEqual([{ name: '', address: HIDE }]);
    expect(copy.raw.toString('latin1')).not.toContain('Hidden clear subject');
  });

  it('a bare-text inline post reaches a PGP/MIME subscriber inline, where its signature verifies', async () => {
    const id = `<bare-${Date.now()}@example.org>`;
    const armored = await encryptInner(utf8('Just text, signed as inline clients sign it.\r\n'), alice.privateKey, keys[SHOW]!);
    const raw = buildInlineMail([['From', `<${alice.address}>`], ['To', `<${SHOW}>`], ['Subject', 'inline'], ['Message-ID', id]], armored);
    expect(await send(server.smtpPort, alice.address, SHOW, raw)).toMatch(/^250/);
    const copy = await copyTo(bob.address, id); // bob's preference is PGP/MIME (the server default)
    const head = copy.raw.toString('latin1').split('\r\n\r\n')[0]!;
    expect(head).toMatch(/^Content-Type: text\/plain/im);
    expect(head).not.toMatch(/multipart\/encrypted/i);
    const read = await readMail(copy.raw, { privateKey: bob.privateKey, senderKeys: [alice.publicKey] });
    expect(read.verification.valid).toBe(true);
    expect(read.message.text).toBe('Just text, signed as inline clients sign it.\r\n');
  });

  it('the author\'s name and a clear subject are nowhere in the data folder in clear', async () => {
    const marker = `MARKER${Date.now()}`;
    const id = `<scan-${Date.now()}@example.org>`;
    const raw = await plainMimePost(bob, `Name${marker}`, SHOW, `Subject${marker}`, 'scan body', id);
    expect(await send(server.smtpPort, bob.address, SHOW, raw)).toMatch(/^250/);
    const copy = await copyTo(alice.address, id);
    expect((await PostalMime.parse(copy.raw)).subject).toBe(`Subject${marker}`); // it is shown...
    await sink.waitFor(() => sink.to(bob.address).some((m) => m.raw.includes(id)), 30_000, 'every copy sent');
    for (const file of listFiles(dataDir)) {
      const bytes = readListed(file);
      expect(bytes?.includes(marker) ?? false, file).toBe(false); // ...but never stored in clear
    }
  });
});
