// The list server over real SMTP on loopback: posts go in with nodemailer, copies
// come out at a loopback SMTP sink, every copy is decrypted by the real gpg, and
// each policy case ends in the right SMTP refusal (550 and the reason) or hold.

import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyIdentity, parsePrivateKey, readMessage, unlockPrivateKey, assembleCopy, ERROR_MESSAGES } from '../../../shared/index.ts';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { getList } from '../../../server/store/lists.ts';
import { REFUSAL_MESSAGES } from '../../../server/pipeline/reasons.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { Gpg } from '../../support/gpg.ts';
import { addList, compose, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person, type SinkMessage } from './harness.ts';
import { badSignaturePost, unsignedPost, wrongKeyPost } from './policy-mail.ts';

const OPEN = 'open@lists.test';
const MOD = 'mod@lists.test';
const SMALL = 'small@lists.test';
const ANNOUNCE = 'announce@lists.test';
const OWNER = 'owner@example.org';
/** The owner's key is registered here only: operator mail is sealed to it, wherever the owner subscribes. */
const OWNERS = 'owners@lists.test';

let sink: Sink;
let dataDir: string;
let server: RunningServer;
let gpg: Gpg;
let alice: Person, bob: Person, carol: Person, dave: Person, eve: Person, frank: Person, owner: Person;
const keys: Record<string, openpgp.PublicKey> = {};

function text(m: SinkMessage): string {
  return m.raw.toString('utf8');
}

function header(m: SinkMessage, name: string): string | null {
  const head = text(m).split(/\r\n\r\n/)[0]!.replace(/\r\n[ \t]+/g, ' ');
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line ? line.slice(name.length + 1).trim() : null;
}

/** The owner's failure reports since `from`, decrypted with the owner's key (the list key's signature checked). */
const opened = new Map<SinkMessage, string>();
async function ownerReports(from: number): Promise<string[]> {
  const out: string[] = [];
  for (const m of sink.to(OWNER).slice(from)) {
    if (!/^Subject: Delivery report for /m.test(text(m).split('\r\n\r\n')[0]!)) continue;
    if (!opened.has(m)) {
      expect(text(m)).toContain('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"');
      const armored = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(text(m))![0];
      const list = /^From: <([^>]+)>/m.exec(text(m))![1]!;
      const { data, signatures } = await openpgp.decrypt({
        message: await openpgp.readMessage({ armoredMessage: armored }), decryptionKeys: owner.privateKey, verificationKeys: keys[list]!, expectSigned: true,
      });
      await signatures[0]!.verified;
      opened.set(m, (await PostalMime.parse(data as string)).text ?? '');
    }
    out.push(opened.get(m)!);
  }
  return out;
}

/** Waits until the owner's reports since `from` together contain every one of `needles`; returns their joined text. */
async function reportsWith(from: number, needles: string[]): Promise<string> {
  const end = Date.now() + 30_000;
  for (;;) {
    const all = (await ownerReports(from)).join('\n');
    if (needles.every((n) => all.includes(n))) return all;
    if (Date.now() > end) throw new Error(`timed out waiting for an owner report naming ${needles.join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const bounces = (rcpt: string) => sink.to(rcpt).filter((m) => m.from === '');

/** Waits for the next bounce to `rcpt` after `before` of them (counted before sending). */
async function bounceFor(rcpt: string, marker: string, before: number): Promise<SinkMessage> {
  await sink.waitFor(() => bounces(rcpt).length > before, 20_000, `bounce to ${rcpt}`);
  expect(bounces(rcpt)).toHaveLength(before + 1);
  const m = bounces(rcpt).at(-1)!;
  expect(m.from).toBe(''); // null sender: a bounce never bounces back
  expect(text(m)).not.toContain(marker);
  expect(text(m)).not.toContain(Buffer.from(marker).toString('base64').slice(0, 12));
  return m;
}

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('it-data');
  await initData(dataDir, sink.port, { smtp: { port: 0, maxMessageBytes: 2 * 1024 * 1024 } });
  [alice, bob, carol, dave, eve, frank] = await Promise.all([
    person('alice@example.org'), person('bob@example.org'), person('carol@example.org'), person('dave@example.org'),
    person('eve@example.org', 30), person('frank@example.org'),
  ]);
  owner = await person(OWNER);
  await addList(dataDir, OWNERS, { owner: OWNER }, [owner]);
  await addList(dataDir, OPEN, { owner: OWNER }, [alice, bob, carol]);
  await addList(dataDir, MOD, { owner: OWNER, postPolicy: 'moderated' }, [alice, bob]);
  await addList(dataDir, SMALL, { owner: OWNER, maxBytes: 20_000 }, [alice, bob]);
  await addList(dataDir, ANNOUNCE, { owner: OWNER, postPolicy: 'announce', posters: ['alice@example.org'] }, [alice, bob]);
  for (const l of [OPEN, MOD, SMALL, ANNOUNCE, OWNERS]) keys[l] = await listPublicKey(dataDir, l);
  gpg = new Gpg();
  for (const p of [alice, bob, carol]) await gpg.importKey(p.privateArmored, p.passphrase);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: 'debug', stdout: false }) });
});

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  gpg?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('accepted post', () => {
  it('reaches every subscriber; each copy decrypts in gpg with the sender\'s good signature', async () => {
    const marker = `MARKER-accepted-${Date.now()}`;
    const reply = await send(server.smtpPort, alice.address, OPEN, await compose(alice, OPEN, keys[OPEN]!, `Hello list ${marker}\n`, `Subject ${marker}`));
    expect(reply).toMatch(/^250 .*accepted/);
    await sink.waitFor(() => [alice, bob, carol].every((p) => sink.to(p.address).some((m) => m.from.includes('+bounces-'))), 20_000, 'three copies');
    const aliceSigningKeyId = alice.publicKey.getKeyID().toHex().toUpperCase();
    const envelopeSenders = new Set<string>();
    for (const p of [alice, bob, carol]) {
      const copy = sink.to(p.address).find((m) => m.from.includes('+bounces-'))!;
      expect(text(copy)).not.toContain(marker); // the sink sees only ciphertext
      envelopeSenders.add(copy.from);
      expect(copy.from).toMatch(/^open\+bounces-\d+-[0-9a-f]{16}@lists\.test$/);
      expect(header(copy, 'Subject')).toBe('...');
      expect(header(copy, 'List-Id')).toBe('<open.lists.test>');
      expect(header(copy, 'List-Post')).toBe('<mailto:open@lists.test>');
      expect(header(copy, 'List-Unsubscribe')).toMatch(/^<http:\/\/127\.0\.0\.1:\d+\/lists\/open%40lists\.test\/unsubscribe\?m=.+&t=[0-9a-f]{16}>$/);
      expect(header(copy, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
      expect(header(copy, 'List-Archive')).toMatch(/\/lists\/open%40lists\.test\/archive>$/);
      const r = await gpg.run(['--decrypt'], copy.raw, p.passphrase);
      expect(r.code, r.stderr).toBe(0);
      const encTo = (await p.publicKey.getEncryptionKey()).getKeyID().toHex().toUpperCase();
      expect(r.status.filter((s) => s.startsWith('ENC_TO '))).toEqual([expect.stringContaining(`ENC_TO ${encTo}`)]);
      expect(r.status.some((s) => s.startsWith(`GOODSIG ${aliceSigningKeyId}`))).toBe(true);
      expect(r.stdout.toString()).toContain(Buffer.from(`Hello list ${marker}`).toString('base64').slice(0, 16));
    }
    expect(envelopeSenders.size).toBe(3); // one VERP sender per recipient
  });

  it('stores the body once, one PKESK per recipient, and an archive record the archive key opens', async () => {
    const sql = await openData(dataDir, SECRET);
    try {
      const list = (await getList(sql, OPEN))!;
      const post = (await sql.get('SELECT * FROM posts WHERE list_id = ? ORDER BY id DESC LIMIT 1', [list.id])) as Record<string, unknown>;
      // Threading metadata and ciphertext only: no subject, no sender in clear. The
      // author's name and address for the copies' From are sealed to the list key.
      expect(Object.keys(post).sort()).toEqual(['archive_pkesk', 'bare_text', 'body', 'created_at', 'date', 'display', 'id', 'in_reply_to', 'list_id', 'list_pkesk', 'message_id', 'outer_message_id', 'refs', 'size', 'wrap_after', 'wrap_done', 'wrap_owner', 'wrap_until'].sort());
      expect(Buffer.from(post.display as Buffer).toString('latin1')).not.toContain(alice.address);
      expect(post.bare_text).toBe(0);
      expect(post.wrap_done).toBe(1);
      expect(post.list_pkesk).toBeNull(); // K's wrap to the list key is dropped once the fan-out is done
      const rows = (await sql.all("SELECT kind, pkesk, mail, state FROM deliveries WHERE post_id = ? AND kind = 'copy'", [post.id as number])) as Array<{ pkesk: Buffer | null; state: string }>;
      expect(rows).toHaveLength(3);
      expect(rows.every((r) => r.state === 'sent' && r.pkesk === null)).toBe(true); // a sent row keeps nothing
      const archivePriv = await unlockPrivateKey(await parsePrivateKey(list.archivePrivate), SECRET);
      const record = assembleCopy(new Uint8Array(post.archive_pkesk as Buffer), new Uint8Array(post.body as Buffer));
      const read = await readMessage(record, { privateKey: archivePriv, senderKeys: [alice.publicKey] });
      expect(read.verification.valid).toBe(true);
      expect(read.message.text).toMatch(/^Hello list MARKER-accepted-/);
      expect(new KeyIdentity(archivePriv)).toBeTruthy();
    } finally {
      await sql.close();
    }
  });
});

describe('refused posts are answered 550 at SMTP time with the reason, and bounce nowhere', () => {
  const cases: Array<[string, (M: string) => Promise<{ from: Person; list: string; raw: string }>, string, string]> = [
    ['not encrypted at all', async (M) => ({ from: alice, list: OPEN, raw: `From: <${alice.address}>\r\nTo: <${OPEN}>\r\nSubject: ${M}\r\n\r\nplain ${M}\r\n` }), ERROR_MESSAGES.NO_PAYLOAD, '5.6.0 NO_PAYLOAD'],
    ['non-member', async (M) => ({ from: dave, list: OPEN, raw: await compose(dave, OPEN, keys[OPEN]!, M) }), REFUSAL_MESSAGES.NOT_MEMBER, '5.7.1 NOT_MEMBER'],
    ['unsigned', async (M) => ({ from: alice, list: OPEN, raw: await unsignedPost(alice.address, OPEN, keys[OPEN]!, M) }), ERROR_MESSAGES.UNSIGNED, '5.7.1 UNSIGNED'],
    ['bad signature', async (M) => ({ from: alice, list: OPEN, raw: await badSignaturePost(alice.address, OPEN, keys[OPEN]!, alice.privateKey, M) }), ERROR_MESSAGES.BAD_SIGNATURE, '5.7.1 BAD_SIGNATURE'],
    ['signed by another member\'s key', async (M) => ({ from: alice, list: OPEN, raw: (await compose(bob, OPEN, keys[OPEN]!, M)).replace(/^From: .*$/m, `From: <${alice.address}>`) }), ERROR_MESSAGES.SIGNER_UNKNOWN, '5.7.1 SIGNER_UNKNOWN'],
    ['wrong list key', async (M) => ({ from: alice, list: OPEN, raw: await wrongKeyPost(alice.address, OPEN, keys[MOD]!, alice.privateKey, M) }), ERROR_MESSAGES.WRONG_KEY, '5.7.5 WRONG_KEY'],
    ['too large for the list', async (M) => ({ from: alice, list: SMALL, raw: await compose(alice, SMALL, keys[SMALL]!, `${M} ${'x'.repeat(40_000)}`) }), ERROR_MESSAGES.TOO_LARGE, '5.3.4 TOO_LARGE'],
    ['announce list, not a poster', async (M) => ({ from: bob, list: ANNOUNCE, raw: await compose(bob, ANNOUNCE, keys[ANNOUNCE]!, M) }), REFUSAL_MESSAGES.NOT_POSTER, '5.7.1 NOT_POSTER'],
  ];
  for (const [name, make, sentence, status] of cases) {
    it(name, async () => {
      const marker = `MARKER-${name.replace(/\W/g, '')}-${Date.now()}`;
      const { from, list, raw } = await make(marker);
      const copiesBefore = sink.messages.filter((m) => m.from.startsWith(list.split('@')[0]! + '+bounces-')).length;
      const bouncesBefore = ((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE kind = 'bounce'")) as { n: number }).n;
      const postsBefore = ((await server.sql.get('SELECT count(*) AS n FROM posts')) as { n: number }).n;
      const refused = await send(server.smtpPort, from.address, list, raw).then(
        (reply) => { throw new Error(`accepted: ${reply}`); },
        (e: { responseCode?: number; response?: string }) => e,
      );
      // The sending MTA gets the reason while it waits, and tells its own user.
      expect(refused.responseCode).toBe(550);
      expect(refused.response).toBe(`550 ${status}: ${sentence}`);
      expect(refused.response).not.toContain(marker);
      // No bounce is queued (backscatter), no copy goes out.
      expect(((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE kind = 'bounce'")) as { n: number }).n).toBe(bouncesBefore);
      expect(((await server.sql.get('SELECT count(*) AS n FROM posts')) as { n: number }).n).toBe(postsBefore);
      expect(sink.messages.filter((m) => m.from.startsWith(list.split('@')[0]! + '+bounces-')).length).toBe(copiesBefore);
    });
  }

  it('an announce list delivers its named poster\'s post', async () => {
    await send(server.smtpPort, alice.address, ANNOUNCE, await compose(alice, ANNOUNCE, keys[ANNOUNCE]!, 'announcement'));
    await sink.waitFor(() => sink.to(bob.address).some((m) => m.from.startsWith('announce+bounces-')), 20_000, 'announce copy');
  });
});

describe('SMTP ingest limits', () => {
  it('refuses unknown recipients at RCPT', async () => {
    await expect(send(server.smtpPort, alice.address, 'nobody@lists.test', 'Subject: x\r\n\r\nx\r\n')).rejects.toMatchObject({ responseCode: 550 });
  });

  it('refuses a message over the server size limit with 552', async () => {
    const big = `From: <${alice.address}>\r\nSubject: big\r\n\r\n${('y'.repeat(998) + '\r\n').repeat(2200)}`;
    await expect(send(server.smtpPort, alice.address, OPEN, big)).rejects.toMatchObject({ responseCode: 552 });
  });
});

describe('moderated list', () => {
  it('holds the post as ciphertext, tells the sender, and delivers it after approval from the CLI', async () => {
    const marker = `MARKER-moderated-${Date.now()}`;
    const before = bounces(alice.address).length;
    const reply = await send(server.smtpPort, alice.address, MOD, await compose(alice, MOD, keys[MOD]!, `held ${marker}`));
    expect(reply).toMatch(/^250 .*held/);
    const notice = await bounceFor(alice.address, marker, before);
    expect(text(notice)).toMatch(/held until a moderator approves it/);
    const sql = await openData(dataDir, SECRET);
    const held = (await sql.all('SELECT id, payload FROM held')) as Array<{ id: number; payload: Buffer }>;
    await sql.close();
    expect(held).toHaveLength(1);
    expect(held[0]!.payload.toString('latin1')).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    expect(sink.to(bob.address).filter((m) => m.from.startsWith('mod+bounces-'))).toHaveLength(0);

    const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', '--data', dataDir, ...args], { cwd: join(import.meta.dirname, '..', '..', '..'), env: { ...process.env, LETTERLOCK_SECRET: SECRET }, encoding: 'utf8' });
    const listed = cli(['held', 'list', MOD]);
    expect(listed.stdout).toMatch(new RegExp(`^${held[0]!.id}\\s+.*from alice@example.org`, 'm'));
    const approved = cli(['held', 'approve', String(held[0]!.id)]);
    expect(approved.status, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(/accepted \(2 copies queued/);
    await sink.waitFor(() => sink.to(bob.address).some((m) => m.from.startsWith('mod+bounces-')), 20_000, 'approved copy');
    const copy = sink.to(bob.address).find((m) => m.from.startsWith('mod+bounces-'))!;
    const r = await gpg.run(['--decrypt'], copy.raw, bob.passphrase);
    expect(r.status.some((s) => s.startsWith('GOODSIG'))).toBe(true);
    expect(cli(['held', 'list']).stdout.trim()).toBe('');

    // A rejected post: the sender is told why, and nothing of it is kept.
    const marker2 = `MARKER-rejected-${Date.now()}`;
    let n = bounces(alice.address).length;
    await send(server.smtpPort, alice.address, MOD, await compose(alice, MOD, keys[MOD]!, `to reject ${marker2}`));
    await bounceFor(alice.address, marker2, n);
    const id2 = /^(\d+)\s/m.exec(cli(['held', 'list', MOD]).stdout)?.[1];
    n = bounces(alice.address).length;
    expect(cli(['held', 'reject', id2!]).stdout).toMatch(/refused \(REJECTED_BY_MODERATOR\)/);
    const rejected = await bounceFor(alice.address, marker2, n);
    expect(text(rejected).replace(/\r\n/g, '\n')).toContain(`Reason: ${REFUSAL_MESSAGES.REJECTED_BY_MODERATOR}`);
    expect(cli(['held', 'list']).stdout.trim()).toBe('');
  });
});

describe('members whose key cannot be used, and failed deliveries', () => {
  it('an expired or revoked key gets a notice without content; the owner is told', async () => {
    const sql = await openData(dataDir, SECRET);
    const list = (await getList(sql, OPEN))!;
    // Eve's key expires 30 s after creation (room for a slow machine to make and read it); it was valid when she was registered.
    await registerMember(sql, list.id, eve.address, eve.publicArmored, new Date(eve.publicKey.keyPacket.created.getTime() + 500));
    await registerMember(sql, list.id, frank.address, frank.publicArmored);
    const { publicKey: revoked } = await openpgp.revokeKey({ key: frank.privateKey, format: 'object' });
    const r = await registerMember(sql, list.id, frank.address, revoked.armor());
    expect(r.revoked).toBe(true);
    await sql.close();
    while ((eve.publicKey.keyPacket.created.getTime() + 30_000) > Date.now()) await new Promise((res) => setTimeout(res, 100));

    const marker = `MARKER-missed-${Date.now()}`;
    const ownerBefore = sink.to(OWNER).length;
    await send(server.smtpPort, alice.address, OPEN, await compose(alice, OPEN, keys[OPEN]!, `post ${marker}`));
    for (const [p, code] of [[eve, 'KEY_EXPIRED'], [frank, 'KEY_REVOKED']] as const) {
      await sink.waitFor(() => sink.to(p.address).length > 0, 20_000, `notice to ${p.address}`);
      const notice = sink.to(p.address)[0]!;
      expect(text(notice)).toContain('could not be encrypted to your key');
      expect(text(notice).replace(/\r\n/g, '\n')).toContain(ERROR_MESSAGES[code]);
      expect(text(notice)).not.toContain(marker);
      expect(text(notice)).not.toMatch(/BEGIN PGP MESSAGE/);
    }
    const report = await reportsWith(ownerBefore, ['eve@example.org: KEY_EXPIRED', 'frank@example.org: KEY_REVOKED']);
    expect(report).not.toContain(marker);
    // Sealed: neither address nor reason is in clear.
    for (const m of sink.to(OWNER).slice(ownerBefore)) for (const x of ['eve@example.org', 'KEY_EXPIRED', 'frank@example.org']) expect(text(m)).not.toContain(x);
    const dbm = await openData(dataDir, SECRET);
    const l = (await getList(dbm, OPEN))!;
    (await dbm.run('DELETE FROM members WHERE list_id = ? AND address IN (?, ?)', [l.id, eve.address, frank.address]));
    await dbm.close();
  });

  it('retries temporary failures until delivered; reports permanent ones to the owner', async () => {
    // The earlier tests' copies first: on a busy machine one to bob could still be on its
    // way and pass for this post's copy (or take one of the refusals meant for it).
    const busy = async () => ((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE state IN ('queued','claimed','sending')")) as { n: number }).n;
    await sink.waitFor(async () => (await busy()) === 0, 60_000, 'the earlier deliveries');
    let bobRefusals = 0;
    sink.refuse = (rcpt) => {
      if (rcpt === carol.address) return 550;
      if (rcpt === bob.address && bobRefusals < 2) return (bobRefusals++, 451);
      return undefined;
    };
    const ownerBefore = sink.to(OWNER).length;
    const bobBefore = sink.to(bob.address).length;
    await send(server.smtpPort, alice.address, OPEN, await compose(alice, OPEN, keys[OPEN]!, 'retry test'));
    await sink.waitFor(() => sink.to(bob.address).length > bobBefore, 20_000, 'bob after retries');
    expect(bobRefusals).toBe(2);
    const report = await reportsWith(ownerBefore, ['carol@example.org']);
    expect(report).toMatch(/carol@example\.org: SMTP_550/);
    expect(report).not.toContain('bob@example.org');
    sink.refuse = () => undefined;
  });

  it('a bounce to a VERP address marks that copy bounced and tells the owner', async () => {
    const copy = sink.to(alice.address).filter((m) => m.from.startsWith('open+bounces-')).at(-1)!;
    const ownerBefore = sink.to(OWNER).length;
    await send(server.smtpPort, '', copy.from, 'From: <MAILER-DAEMON@example.org>\r\nSubject: Undelivered\r\n\r\nUser unknown\r\n');
    await reportsWith(ownerBefore, ['alice@example.org: BOUNCED']);
    const tampered = copy.from.replace(/-([0-9a-f]{16})@/, '-0000000000000000@');
    await expect(send(server.smtpPort, '', tampered, 'Subject: x\r\n\r\nx\r\n')).rejects.toMatchObject({ responseCode: 550 });
  });
});

describe('HTTP port', () => {
  it('serves health and list info, and one-click unsubscribe with a valid token only', async () => {
    const base = `http://127.0.0.1:${server.httpPort}`;
    const health = await (await fetch(`${base}/health`)).json() as { ok: boolean };
    expect(health.ok).toBe(true);
    const lists = await (await fetch(`${base}/lists`)).json() as Array<{ address: string; members: number }>;
    expect(lists.find((l) => l.address === OPEN)?.members).toBe(3);
    const copy = sink.to(carol.address).find((m) => m.from.startsWith('open+bounces-'))!;
    const url = /^<(.+)>$/.exec(header(copy, 'List-Unsubscribe')!)![1]!;
    const bad = await fetch(url.replace(/t=[0-9a-f]+/, 't=0000000000000000'), { method: 'POST', body: 'List-Unsubscribe=One-Click' });
    expect(bad.status).toBe(403);
    const ok = await fetch(url, { method: 'POST', body: 'List-Unsubscribe=One-Click' });
    expect(ok.status).toBe(200);
    const after = await (await fetch(`${base}/lists`)).json() as Array<{ address: string; members: number }>;
    expect(after.find((l) => l.address === OPEN)?.members).toBe(2);
  });
});
