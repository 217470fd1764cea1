// Replay protection and backscatter, over real SMTP against the real server:
// a member's re-wrapped copy sent again as the author, the same mail twice (also
// at once), a post whose signed To names another list, signatures too old or
// from the future, a flood of junk with forged senders (550s, no bounce), the
// rules for the bounces that stay asynchronous, their rate limit across a
// restart, and one bounce for a mail to several lists.

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import * as openpgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  armorMessage, assembleCopy, buildInnerMessage, buildPgpMimeMail, findPayload, formatDate, KeyIdentity, KeyRecipient, newMessageId,
  rewrap, ERROR_MESSAGES, type HeaderList,
} from '../../../shared/index.ts';
import { startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { REFUSAL_MESSAGES } from '../../../server/pipeline/reasons.ts';
import { getList } from '../../../server/store/lists.ts';
import { openData } from '../../../server/app.ts';
import { addList, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person, type SinkMessage } from './harness.ts';

const A = 'alpha@lists.test';
const B = 'beta@lists.test';
const C = 'gamma@lists.test';
const D = 'delta@lists.test';
const MOD = 'mod@lists.test';
const RATE = 'rate@lists.test';
const DAY = 24 * 60 * 60 * 1000;

let sink: Sink;
let dataDir: string;
let server: RunningServer;
let admin = '';
let alice: Person, bob: Person, mallory: Person;
let oldie: { address: string; privateKey: openpgp.PrivateKey };
const keys: Record<string, PublicKey> = {};

async function start(): Promise<void> {
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: 'debug', stdout: false }) });
}

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('replay');
  await initData(dataDir, sink.port);
  [alice, bob, mallory] = await Promise.all([person('alice@example.org'), person('bob@example.org'), person('mallory@example.org')]);
  await addList(dataDir, A, { owner: 'owner@example.org' }, [alice, bob]);
  await addList(dataDir, B, { owner: 'owner@example.org' }, [alice, bob]);
  await addList(dataDir, C, { owner: 'owner@example.org' }, [bob]);
  await addList(dataDir, D, { owner: 'owner@example.org' }, [bob]);
  await addList(dataDir, MOD, { owner: 'owner@example.org', postPolicy: 'moderated' }, [alice, bob]);
  await addList(dataDir, RATE, { owner: 'owner@example.org', postPolicy: 'moderated' }, [alice, bob]);
  for (const l of [A, B, C, D, MOD, RATE]) keys[l] = await listPublicKey(dataDir, l);
  // A key made nine days ago, so a signature eight days old is one it could make.
  const made = await openpgp.generateKey({
    type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'oldie@example.org' }], date: new Date(Date.now() - 9 * DAY), format: 'armored',
  });
  oldie = { address: 'oldie@example.org', privateKey: await openpgp.readPrivateKey({ armoredKey: made.privateKey }) };
  const sql = await openData(dataDir, SECRET);
  try {
    await registerMember(sql, (await getList(sql, A))!.id, oldie.address, made.publicKey);
    await registerMember(sql, (await getList(sql, MOD))!.id, oldie.address, made.publicKey);
  } finally {
    await sql.close();
  }
  await start();
  admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
});

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// ---- helpers ------------------------------------------------------------------------------------

function outerHeaders(from: string, to: string[], messageId: string): HeaderList {
  return [['From', `<${from}>`], ['To', to.map((t) => `<${t}>`).join(', ')], ['Subject', '...'], ['Date', formatDate(new Date())], ['Message-ID', messageId]];
}

/** A post signed at `signedAt` (default now), its signed To naming `innerTo`, encrypted to `encryptTo`. */
async function post(from: { address: string; privateKey: openpgp.PrivateKey }, innerTo: string[], encryptTo: string[], text: string, signedAt?: Date): Promise<{ raw: string; messageId: string }> {
  const inner = buildInnerMessage({ subject: 's', from: { address: from.address }, to: innerTo.map((address) => ({ address })), text });
  // Sign first, then encrypt without signing: the signature's date is free, the encryption is made now.
  const signed = await openpgp.sign({
    message: await openpgp.createMessage({ binary: inner.bytes, format: 'binary' }), signingKeys: from.privateKey, format: 'object',
    ...(signedAt ? { date: signedAt } : {}),
  });
  const armored = await openpgp.encrypt({ message: signed as never, encryptionKeys: encryptTo.map((l) => keys[l]!) });
  return { raw: buildPgpMimeMail(outerHeaders(from.address, innerTo, inner.messageId), armored), messageId: inner.messageId };
}

/** One SMTP transaction to several recipients. */
async function sendMany(from: string, to: string[], raw: string): Promise<string> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: server.smtpPort, secure: false, ignoreTLS: true, connectionTimeout: 10_000, socketTimeout: 120_000 });
  try {
    return (await t.sendMail({ envelope: { from, to }, raw })).response;
  } finally {
    t.close();
  }
}

async function refusedWith(p: Promise<string>): Promise<string> {
  const e = await p.then((r) => { throw new Error(`accepted: ${r}`); }, (err: { responseCode?: number; response?: string }) => err);
  expect(e.responseCode).toBe(550);
  return e.response ?? '';
}

const postsOn = async (list: string) => ((await server.sql.get('SELECT count(*) AS n FROM posts p JOIN lists l ON l.id = p.list_id WHERE l.address = ?', [list])) as { n: number }).n;
const bounceRows = async (rcpt: string) => ((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE kind = 'bounce' AND rcpt = ?", [rcpt.toLowerCase()])) as { n: number }).n;
const allBounceRows = async () => ((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE kind = 'bounce'")) as { n: number }).n;
const copiesTo = (rcpt: string, list: string) => sink.to(rcpt).filter((m) => m.from.startsWith(`${list.split('@')[0]}+bounces-`));
const nullSender = (rcpt: string) => sink.to(rcpt).filter((m) => m.from === '');
const text = (m: SinkMessage) => m.raw.toString('utf8').replace(/\r\n/g, '\n');

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
    method, headers: { authorization: `Bearer ${admin}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: await r.json() as Record<string, unknown> };
}

async function heldIds(list: string): Promise<number[]> {
  return ((await api('GET', `/v1/admin/lists/${list}/held`)).body.held as Array<{ id: number }>).map((h) => h.id);
}

/** Splits a delivered copy (PKESK ‖ body) as its recipient's mail program sees it. */
async function copyParts(m: SinkMessage): Promise<{ pkesk: Uint8Array; body: Uint8Array }> {
  const found = await findPayload(m.raw, 10_000_000);
  const bytes = (await openpgp.unarmor(found.armored!)).data as Uint8Array;
  const packets = await openpgp.readMessage({ binaryMessage: bytes });
  const pkesk = packets.packets[0]!.write();
  // The list writes the PKESK with a new-format header and a one-octet length.
  expect(bytes[0]).toBe(0xc1);
  expect(bytes[1]).toBe(pkesk.length);
  return { pkesk: bytes.subarray(0, 2 + bytes[1]!), body: bytes.subarray(2 + bytes[1]!) };
}

// ---- replay --------------------------------------------------------------------------------------

describe('replay protection', () => {
  it('a member re-wraps K from their own copy to the list key and resends it as alice: 550 REPLAYED, nothing delivered', async () => {
    const original = await post(alice, [A], [A], 'original words');
    expect(await send(server.smtpPort, alice.address, A, original.raw)).toMatch(/^250 .*accepted/);
    // Both members' copies are in before counting, so only a redelivery could add to the sink.
    await sink.waitFor(() => copiesTo(bob.address, A).length >= 1 && copiesTo(alice.address, A).length >= 1, 30_000, 'both copies');
    const { pkesk, body } = await copyParts(copiesTo(bob.address, A)[0]!);

    const bobIdentity = new KeyIdentity(bob.privateKey);
    const forged = async (list: string) => {
      const toList = await rewrap(pkesk, bobIdentity, await KeyRecipient.fromPublicKey(keys[list]!));
      // A new outer Message-ID, so it is not taken for an MTA retry.
      return buildPgpMimeMail(outerHeaders(alice.address, [list], newMessageId('example.org')), armorMessage(assembleCopy(toList, body)));
    };
    const postsBefore = await postsOn(A);
    const copiesBefore = sink.messages.length;
    const reply = await refusedWith(send(server.smtpPort, alice.address, A, await forged(A)));
    expect(reply).toMatch(/^550 5\.7\.1 REPLAYED: /);
    expect(reply).toContain(REFUSAL_MESSAGES.REPLAYED);
    expect(await postsOn(A)).toBe(postsBefore);
    // The same body on another list where alice is a member: its signed To names list A.
    const other = await refusedWith(send(server.smtpPort, alice.address, B, await forged(B)));
    expect(other).toMatch(/^550 5\.7\.1 WRONG_LIST: /);
    expect(await postsOn(B)).toBe(0);
    expect(await allBounceRows()).toBe(0); // refused at SMTP time: no bounce
    expect(sink.messages.length).toBe(copiesBefore);
  });

  it('a replay whose signature packet was edited where no signature covers it (unhashed subpackets) is still REPLAYED', async () => {
    const inner = buildInnerMessage({ subject: 's', from: { address: alice.address }, to: [{ address: A }], text: 'edited packet' });
    const signed = await openpgp.sign({ message: await openpgp.createMessage({ binary: inner.bytes, format: 'binary' }), signingKeys: alice.privateKey, format: 'object' });
    const mail = async (id: string) => buildPgpMimeMail(outerHeaders(alice.address, [A], id), await openpgp.encrypt({ message: signed as never, encryptionKeys: keys[A]! }));
    expect(await send(server.smtpPort, alice.address, A, await mail(inner.messageId))).toMatch(/^250 .*accepted/);
    const sig = signed.packets.filterByTag(openpgp.enums.packet.signature)[0] as unknown as { unhashedSubpackets: Array<{ type: number; critical: boolean; body: Uint8Array }> };
    sig.unhashedSubpackets.push({ type: 101, critical: false, body: new Uint8Array([1, 2, 3, 4]) }); // a private, unhashed subpacket
    const before = await postsOn(A);
    expect(await refusedWith(send(server.smtpPort, alice.address, A, await mail(newMessageId('example.org'))))).toMatch(/^550 5\.7\.1 REPLAYED: /);
    expect(await postsOn(A)).toBe(before);
  });

  it('the same mail sent twice, one after the other and at the same time, gives one post each', async () => {
    const once = await post(alice, [A], [A], 'sent twice');
    const before = await postsOn(A);
    expect(await send(server.smtpPort, alice.address, A, once.raw)).toMatch(/^250 .*accepted/);
    expect(await send(server.smtpPort, alice.address, A, once.raw)).toMatch(/^250 .*duplicate/);
    expect(await postsOn(A)).toBe(before + 1);

    const racing = await post(alice, [A], [A], 'sent at once');
    const replies = await Promise.all([0, 1, 2].map(() => send(server.smtpPort, alice.address, A, racing.raw)));
    for (const r of replies) expect(r).toMatch(/^250 /);
    expect(replies.filter((r) => r === '250 OK: accepted')).toHaveLength(1);
    expect(replies.filter((r) => /duplicate/.test(r))).toHaveLength(2);
    expect(await postsOn(A)).toBe(before + 2);

    // The same signature under a new Message-ID is a replay, not a duplicate.
    const renamed = once.raw.replace(/^Message-ID: .*$/m, `Message-ID: ${newMessageId('example.org')}`);
    expect(await refusedWith(send(server.smtpPort, alice.address, A, renamed))).toMatch(/REPLAYED/);
    expect(await postsOn(A)).toBe(before + 2);
  });

  it('a post to list B whose signed To names list A: 550 WRONG_LIST', async () => {
    const p = await post(alice, [A], [B], 'meant for alpha');
    const reply = await refusedWith(send(server.smtpPort, alice.address, B, p.raw));
    expect(reply).toMatch(/^550 5\.7\.1 WRONG_LIST: /);
    expect(reply).toContain(REFUSAL_MESSAGES.WRONG_LIST);
    // Signed headers naming both lists: accepted on both.
    const both = await post(alice, [A, B], [A, B], 'for both');
    expect(await sendMany(alice.address, [A, B], both.raw)).toMatch(/^250 .*accepted; accepted/);
  });

  it('a signature dated eight days ago, or an hour ahead, is refused', async () => {
    const old = await post(oldie, [A], [A], 'from last week', new Date(Date.now() - 8 * DAY));
    const r1 = await refusedWith(send(server.smtpPort, oldie.address, A, old.raw));
    expect(r1).toMatch(/^550 5\.7\.1 SIGNATURE_TOO_OLD: /);
    const ahead = await post(alice, [A], [A], 'from the future', new Date(Date.now() + 60 * 60 * 1000));
    const r2 = await refusedWith(send(server.smtpPort, alice.address, A, ahead.raw));
    expect(r2).toMatch(/^550 5\.7\.1 SIGNATURE_FROM_FUTURE: /);
    expect(r2).toContain(ERROR_MESSAGES.SIGNATURE_FROM_FUTURE);
    // Within the list's window and the clock skew: accepted.
    const recent = await post(oldie, [A], [A], 'from yesterday', new Date(Date.now() - DAY));
    expect(await send(server.smtpPort, oldie.address, A, recent.raw)).toMatch(/^250 .*accepted/);
    const slightlyAhead = await post(alice, [A], [A], 'clock a bit fast', new Date(Date.now() + 5 * 60 * 1000));
    expect(await send(server.smtpPort, alice.address, A, slightlyAhead.raw)).toMatch(/^250 .*accepted/);
  });

  it('the window is a list setting (operator API); a two-day window refuses a three-day-old signature', async () => {
    const set = await api('PUT', `/v1/admin/lists/${A}/settings`, { replayWindowDays: 2 });
    expect(set.status).toBe(200);
    expect((set.body.policy as { replayWindowDays: number }).replayWindowDays).toBe(2);
    try {
      const p = await post(oldie, [A], [A], 'three days old', new Date(Date.now() - 3 * DAY));
      expect(await refusedWith(send(server.smtpPort, oldie.address, A, p.raw))).toMatch(/SIGNATURE_TOO_OLD/);
      expect((await api('PUT', `/v1/admin/lists/${A}/settings`, { replayWindowDays: 0 })).status).toBe(400);
    } finally {
      await api('PUT', `/v1/admin/lists/${A}/settings`, { replayWindowDays: 7 });
    }
  });

  it('a held post is judged by the window as of when it was held, not when a moderator approves it', async () => {
    const signedAt = Date.now() - 3 * DAY;
    const first = await post(oldie, [MOD], [MOD], 'held early', new Date(signedAt));
    const second = await post(oldie, [MOD], [MOD], 'held late', new Date(signedAt + 1000));
    expect(await send(server.smtpPort, oldie.address, MOD, first.raw)).toMatch(/^250 .*held/);
    expect(await send(server.smtpPort, oldie.address, MOD, second.raw)).toMatch(/^250 .*held/);
    const [early, late] = await heldIds(MOD);
    // As if the first had waited two days for a moderator, held when its signature was a day old;
    // the window is now two days, so only the first was fresh when it was held.
    (await server.sql.run('UPDATE held SET received_at = ? WHERE id = ?', [signedAt + DAY, early!]));
    expect((await api('PUT', `/v1/admin/lists/${MOD}/settings`, { replayWindowDays: 2 })).status).toBe(200);
    try {
      const ok = await api('POST', `/v1/admin/lists/${MOD}/held/${early}/approve`);
      expect((ok.body.outcome as { result: string }).result).toBe('accepted');
      const stale = await api('POST', `/v1/admin/lists/${MOD}/held/${late}/approve`);
      expect(stale.body.outcome).toMatchObject({ result: 'refused', code: 'SIGNATURE_TOO_OLD' });
    } finally {
      await api('PUT', `/v1/admin/lists/${MOD}/settings`, { replayWindowDays: 7 });
    }
    expect(await heldIds(MOD)).toEqual([]);
  });

  it('signed bare text (no signed headers): the digest and the window still apply', async () => {
    const signed = await openpgp.sign({ message: await openpgp.createMessage({ text: 'inline words, no headers' }), signingKeys: alice.privateKey, format: 'object' });
    const armored = await openpgp.encrypt({ message: signed as never, encryptionKeys: keys[A]! });
    const mail = (id: string) => `From: <${alice.address}>\r\nTo: <${A}>\r\nSubject: ...\r\nMessage-ID: ${id}\r\n\r\n${armored}\r\n`;
    expect(await send(server.smtpPort, alice.address, A, mail(newMessageId('example.org')))).toMatch(/^250 .*accepted/);
    expect(await refusedWith(send(server.smtpPort, alice.address, A, mail(newMessageId('example.org'))))).toMatch(/REPLAYED/);
  });
});

// ---- backscatter ---------------------------------------------------------------------------------

describe('no backscatter', () => {
  it('100 junk mails with forged envelope senders: 100 SMTP 550s and no bounce', async () => {
    const before = await allBounceRows();
    const sinkBefore = sink.messages.length;
    const spoofed = await post(mallory, [A], [A], 'not a member');
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: server.smtpPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 2, maxMessages: 1000 });
    try {
      const codes = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
        const victim = `victim${i}@example.net`;
        const raw = i % 10 === 0
          ? spoofed.raw.replace(/^Message-ID: .*$/m, `Message-ID: ${newMessageId('example.net')}`)
          : `From: <${victim}>\r\nTo: <${A}>\r\nSubject: cheap pills ${i}\r\nMessage-ID: <junk${i}@example.net>\r\n\r\nbuy now\r\n`;
        try {
          await t.sendMail({ envelope: { from: victim, to: [A] }, raw });
          return 250;
        } catch (e) {
          return (e as { responseCode?: number }).responseCode ?? 0;
        }
      }));
      expect(codes.filter((c) => c === 550)).toHaveLength(100);
    } finally {
      t.close();
    }
    expect(await allBounceRows()).toBe(before);
    expect(sink.messages.slice(sinkBefore).filter((m) => m.to.some((r) => r.startsWith('victim')))).toHaveLength(0);
  });

  it('a moderator\'s rejection bounces once to a person, never to automatic senders or list addresses', async () => {
    const cases: Array<{ name: string; envelope: string; header?: string; notified: boolean }> = [
      { name: 'auto-replied', envelope: 'auto@example.org', header: 'Auto-Submitted: auto-replied', notified: false },
      { name: 'precedence bulk', envelope: 'bulk@example.org', header: 'Precedence: bulk', notified: false },
      { name: 'mailer-daemon', envelope: 'MAILER-DAEMON@example.org', notified: false },
      { name: 'postmaster', envelope: 'PostMaster@example.org', notified: false },
      { name: 'another list', envelope: B, notified: false },
      { name: 'another list\'s bounce address', envelope: 'beta+bounces-7-0123456789abcdef@lists.test', notified: false },
      { name: 'another list\'s -request address', envelope: 'gamma-request@lists.test', notified: false },
      { name: 'auto-submitted: no is a person', envelope: 'person@example.org', header: 'Auto-Submitted: no', notified: true },
    ];
    for (const c of cases) {
      const p = await post(alice, [MOD], [MOD], `held: ${c.name}`);
      const raw = c.header ? p.raw.replace(/^From: /m, `${c.header}\r\nFrom: `) : p.raw;
      expect(await send(server.smtpPort, c.envelope, MOD, raw), c.name).toMatch(/^250 .*held/);
      const ids = await heldIds(MOD);
      expect(ids).toHaveLength(1);
      const r = await api('POST', `/v1/admin/lists/${MOD}/held/${ids[0]}/reject`);
      expect((r.body.outcome as { result: string }).result).toBe('refused');
      // Held notice + rejection for a person; nothing for the rest.
      expect(await bounceRows(c.envelope), c.name).toBe(c.notified ? 2 : 0);
    }
    await sink.waitFor(() => nullSender('person@example.org').length >= 2, 30_000, 'held notice and bounce');
    const mails = nullSender('person@example.org').map(text);
    expect(mails.filter((m) => m.includes('awaits moderation'))).toHaveLength(1);
    const rejected = mails.filter((m) => m.includes('was not delivered'));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toContain(`Reason: ${REFUSAL_MESSAGES.REJECTED_BY_MODERATOR}`);
    expect(rejected[0]).toMatch(/^Auto-Submitted: auto-replied$/m);
  });

  it('bounces are rate-limited per recipient, and the count survives a restart', async () => {
    const envelope = 'busy-sender@example.org';
    for (let i = 0; i < 3; i++) {
      const p = await post(alice, [RATE], [RATE], `rate ${i}`);
      expect(await send(server.smtpPort, envelope, RATE, p.raw)).toMatch(/^250 .*held/);
    }
    const ids = await heldIds(RATE);
    expect(ids).toHaveLength(3);
    expect(await bounceRows(envelope)).toBe(3); // three held notices
    await api('POST', `/v1/admin/lists/${RATE}/held/${ids[0]}/reject`);
    await api('POST', `/v1/admin/lists/${RATE}/held/${ids[1]}/reject`);
    expect(await bounceRows(envelope)).toBe(5); // the limit: 5 an hour
    await server.close();
    await start();
    await api('POST', `/v1/admin/lists/${RATE}/held/${ids[2]}/reject`);
    expect(await bounceRows(envelope)).toBe(5);
    await sink.waitFor(() => nullSender(envelope).length >= 5, 30_000, 'the five bounces');
    expect(nullSender(envelope)).toHaveLength(5);
  });

  it('a mail to several lists: all refusing gives one 550; mixed outcomes give 250 and one bounce naming the refused lists', async () => {
    const envelope = 'multi@example.org';
    const refusedEverywhere = await post(alice, [C, D], [C, D], 'not a member of either');
    const reply = await refusedWith(sendMany(envelope, [C, D], refusedEverywhere.raw));
    expect(reply).toMatch(/^550 5\.7\.1 Refused by every list: gamma@lists\.test NOT_MEMBER: .* \| delta@lists\.test NOT_MEMBER: /);
    expect(await bounceRows(envelope)).toBe(0);

    const mixed = await post(alice, [A, C, D], [A, C, D], 'member of one of three');
    const before = await postsOn(A);
    expect(await sendMany(envelope, [A, C, D], mixed.raw)).toMatch(/^250 .*accepted; gamma@lists\.test refused \(NOT_MEMBER\); delta@lists\.test refused \(NOT_MEMBER\)/);
    expect(await postsOn(A)).toBe(before + 1);
    expect(await bounceRows(envelope)).toBe(1);
    await sink.waitFor(() => nullSender(envelope).length >= 1, 30_000, 'the one bounce');
    const bounce = text(nullSender(envelope)[0]!);
    expect(bounce).toContain(`- ${C}: ${REFUSAL_MESSAGES.NOT_MEMBER}`);
    expect(bounce).toContain(`- ${D}: ${REFUSAL_MESSAGES.NOT_MEMBER}`);
    expect(bounce).not.toContain('member of one of three');
    expect(await bounceRows(envelope)).toBe(1);
  });
});
