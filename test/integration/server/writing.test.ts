// Issue 12, "Writing", on the server side, over real SMTP and HTTP:
// - the subscription confirmation comes in the delivery form the subscriber chose
//   (inline armored text for webmail, PGP/MIME otherwise), and either form decrypts
//   to the confirmation token;
// - a reply written in webmail carries its threading only in the signed (protected)
//   headers, while the webmail gives the outer mail ids of its own: the list keeps
//   the protected ids, so delivered copies and the archive thread the reply under
//   its root.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  composePost, CONFIRMATION_TOKEN_LINE, readMail, signStatement, type ThreadPage,
} from '../../../shared/index.ts';
import { startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { addList, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person } from './harness.ts';

const LIST = 'club@lists.test';

let sink: Sink, dataDir: string, server: RunningServer, base: string;
let alice: Person, bob: Person;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('writing');
  await initData(dataDir, sink.port);
  [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  await addList(dataDir, LIST, { owner: 'owner@example.org' }, [alice, bob]);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), stdout: false }) });
  base = `http://127.0.0.1:${server.httpPort}`;
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function mailTo(address: string, count: number): Promise<string> {
  await sink.waitFor(() => sink.to(address).length >= count, 60_000, `mail ${count} to ${address}`);
  return sink.to(address)[count - 1]!.raw.toString('utf8');
}

function headOf(mail: string): string {
  return mail.slice(0, mail.indexOf('\r\n\r\n'));
}

function header(mail: string, name: string): string | null {
  const m = new RegExp(`^${name}: ?(.*(?:\\r\\n[ \\t].*)*)`, 'im').exec(headOf(mail));
  return m ? m[1]!.replace(/\r\n[ \t]+/g, ' ').trim() : null;
}

describe('the confirmation mail follows the chosen delivery form', () => {
  for (const form of ['inline', 'pgp-mime'] as const) {
    it(`${form}: the form chosen at subscription, decrypting to a token that confirms`, async () => {
      const p = await person(`sub-${form}@example.org`);
      const r = await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: p.address, publicKey: p.publicArmored, delivery: form });
      expect(r.status).toBe(202);
      const mail = await mailTo(p.address, 1);
      const type = header(mail, 'Content-Type')!;
      if (form === 'inline') {
        expect(type).toMatch(/^text\/plain; charset=us-ascii$/);
        expect(mail.slice(mail.indexOf('\r\n\r\n') + 4)).toMatch(/^-----BEGIN PGP MESSAGE-----\r\n/);
      } else {
        expect(type).toMatch(/^multipart\/encrypted; protocol="application\/pgp-encrypted"/);
      }
      const read = await readMail(mail, { privateKey: p.privateKey, senderKeys: [await listPublicKey(dataDir, LIST)] });
      expect(read.verification.valid).toBe(true);
      const token = CONFIRMATION_TOKEN_LINE.exec(read.message.text ?? '')![1]!;
      expect(mail).not.toContain(token);
      const c = await api<{ status: string }>('POST', `/v1/lists/${LIST}/subscriptions/confirm`, { token });
      expect(c.body.status).toBe('member');
    });
  }
});

describe('replies from webmail thread by their signed headers', () => {
  it('the delivered copy and the archive carry the protected Message-ID, In-Reply-To and References', async () => {
    const listKey = await listPublicKey(dataDir, LIST);
    const aliceBefore = sink.to(alice.address).length;
    // The root, as webmail sends it: a text/plain body with the armored block and an outer Message-ID of the webmail's own.
    const root = await composePost({ message: { subject: 'Root', from: { address: alice.address }, to: [{ address: LIST }], text: 'root text' }, senderKey: alice.privateKey, listKey });
    const webmailMail = (from: string, outerId: string, armored: string) =>
      `From: <${from}>\r\nTo: <${LIST}>\r\nSubject: ...\r\nMessage-ID: ${outerId}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${armored.replace(/\r?\n/g, '\r\n')}`;
    await send(server.smtpPort, alice.address, LIST, webmailMail(alice.address, '<webmail-1@webmail.example>', root.armored));
    const rootCopy = await mailTo(bob.address, 1);
    // Delivered with the id readers see inside the encryption, not the webmail's.
    expect(header(rootCopy, 'Message-ID')).toBe(root.messageId);

    // Bob replies from the reader: threading only inside; the webmail's outer mail has no In-Reply-To.
    const reply = await composePost({
      message: { subject: 'Re: Root', from: { address: bob.address }, to: [{ address: LIST }], text: '> root text\r\n\r\nmy reply', inReplyTo: root.messageId, references: [root.messageId] },
      senderKey: bob.privateKey, listKey,
    });
    await send(server.smtpPort, bob.address, LIST, webmailMail(bob.address, '<webmail-2@webmail.example>', reply.armored));
    const replyCopy = await mailTo(alice.address, aliceBefore + 2);
    expect(header(replyCopy, 'Message-ID')).toBe(reply.messageId);
    expect(header(replyCopy, 'In-Reply-To')).toBe(root.messageId);
    expect(header(replyCopy, 'References')).toBe(root.messageId);
    const read = await readMail(replyCopy, { privateKey: alice.privateKey, senderKeys: [bob.publicKey] });
    expect(read.verification.valid).toBe(true);
    expect(read.message.inReplyTo).toBe(root.messageId);

    // The same webmail mail sent again (its outer id) is a duplicate; the same signed post under a new outer id, a replay.
    expect(await send(server.smtpPort, bob.address, LIST, webmailMail(bob.address, '<webmail-2@webmail.example>', reply.armored))).toMatch(/^250 .*duplicate/);
    const replay = await send(server.smtpPort, bob.address, LIST, webmailMail(bob.address, '<webmail-3@webmail.example>', reply.armored)).then((r) => r, (e: { response?: string }) => e.response ?? String(e));
    expect(replay).toMatch(/^550 .*REPLAYED/);

    const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: bob.address });
    const l = await api<{ token: string }>('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, bob.privateKey) });
    const threads = await api<ThreadPage>('GET', `/v1/lists/${LIST}/archive/threads`, undefined, l.body.token);
    const thread = threads.body.threads.find((t) => t.messages.some((m) => m.messageId === root.messageId))!;
    expect(thread.messages.map((m) => m.messageId)).toEqual([root.messageId, reply.messageId]);
    expect(thread.messages[1]!.inReplyTo).toBe(root.messageId);
  });
});
