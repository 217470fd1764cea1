// The HTTP API over real HTTP on loopback, against the whole list server: list
// discovery and WKD, subscription with a mailed (encrypted) confirmation, the key
// life cycle, the members-only archive, the operator API, and the attacks that
// must fail. Mail leaves through the real delivery queue to a loopback SMTP sink.

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleCopy, CONFIRMATION_TOKEN_LINE, generateKey, loginStatement, parsePrivateKey, readMail, readMessage,
  readPublicKey, requestStatement, signStatement, unlockPrivateKey, type ArchiveMessages, type ThreadPage,
} from '../../../shared/index.ts';
import { startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { wkdPath } from '../../../server/http/wkd.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { addList, compose, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person } from './harness.ts';

const LIST = 'club@lists.test';
const MODERATED = 'closed@lists.test';
const HELD = 'held@lists.test';
const OWNER = 'owner@example.org';

let sink: Sink, dataDir: string, server: RunningServer, base: string, admin: string;
let alice: Person, bob: Person, carol: Person;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('api');
  // This file walks every route from one IP (about 25 subscriptions and 50
  // log-in challenges within a minute or two): the per-IP creation bounds are
  // raised here; api-limits.test.ts checks them at their defaults.
  await initData(dataDir, sink.port, { http: { port: 0, limits: { subscribePerIp: { max: 1000 }, challengePerIp: { max: 1000 }, mailPerIp: { max: 1000 } } } });
  [alice, bob, carol] = await Promise.all([person('alice@example.org'), person('bob@example.org'), person('carol@example.org')]);
  await addList(dataDir, LIST, { owner: OWNER }, [alice, bob]);
  await addList(dataDir, MODERATED, { owner: OWNER }, [alice]);
  await addList(dataDir, HELD, { owner: OWNER, postPolicy: 'moderated' }, [alice, bob]);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), stdout: false }) });
  base = `http://127.0.0.1:${server.httpPort}`;
  admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  await api('PUT', `/v1/admin/lists/${MODERATED}/settings`, { subscription: 'moderated' }, admin);
});

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

interface Reply<T = Record<string, unknown>> { status: number; body: T; headers: Headers }

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}): Promise<Reply<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Everything a refusal may say, so tests can check it leaks nothing. */
function expectError(r: Reply, status: number, code: string): void {
  expect(r.status).toBe(status);
  expect(r.body).toMatchObject({ error: code });
  expect(typeof (r.body as { message?: unknown }).message).toBe('string');
}

async function mailTo(address: string, count: number): Promise<string> {
  await sink.waitFor(() => sink.to(address).length >= count, 20_000, `mail ${count} to ${address}`);
  return sink.to(address)[count - 1]!.raw.toString('utf8');
}

/** Subscribes with the API and confirms from the token in the mailed confirmation, decrypted with the key. */
async function subscribeAndConfirm(list: string, p: Person): Promise<Reply> {
  const before = sink.to(p.address).length;
  const r = await api('POST', `/v1/lists/${list}/subscriptions`, { address: p.address, publicKey: p.publicArmored, delivery: 'inline' });
  expect(r.status).toBe(202);
  const mail = await mailTo(p.address, before + 1);
  const listKey = await listPublicKey(dataDir, list);
  const read = await readMail(mail, { privateKey: p.privateKey, senderKeys: [listKey] });
  expect(read.verification.valid).toBe(true); // signed by the list key
  const token = CONFIRMATION_TOKEN_LINE.exec(read.message.text ?? '')![1]!;
  expect(mail).not.toContain(token); // the token travels only inside the encryption
  return api('POST', `/v1/lists/${list}/subscriptions/confirm`, { token });
}

async function login(list: string, p: Person): Promise<string> {
  const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${list}/auth/challenge`, { address: p.address });
  expect(c.status).toBe(200);
  const signature = await signStatement(c.body.statement, p.privateKey);
  const l = await api<{ token: string }>('POST', `/v1/lists/${list}/auth/login`, { challengeId: c.body.challengeId, signature });
  expect(l.status).toBe(200);
  return l.body.token;
}

describe('discovery', () => {
  it('serves list info with the list key, and 404 for an unknown list', async () => {
    const r = await api<{ address: string; listKey: { fingerprint: string; armored: string }; policy: Record<string, unknown> }>('GET', `/v1/lists/${LIST}`);
    expect(r.status).toBe(200);
    expect(r.body.address).toBe(LIST);
    const { facts } = await readPublicKey(r.body.listKey.armored, { expectedAddress: LIST });
    expect(facts.fingerprint).toBe(r.body.listKey.fingerprint);
    expect(r.body.policy).toMatchObject({ posting: 'members', signatureRequired: true, subscription: 'open' });
    expectError(await api('GET', '/v1/lists/nobody@lists.test'), 404, 'NOT_FOUND');
    expectError(await api('GET', '/v1/lists/not-an-address'), 404, 'NOT_FOUND');
  });

  it('WKD: the list key fetched over the advanced WKD path parses and matches the fingerprint', async () => {
    const info = await api<{ listKey: { fingerprint: string } }>('GET', `/v1/lists/${LIST}`);
    const res = await fetch(`${base}${wkdPath(LIST)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const key = await openpgp.readKey({ binaryKey: new Uint8Array(await res.arrayBuffer()) });
    expect(key.getFingerprint().toUpperCase()).toBe(info.body.listKey.fingerprint);
    expect(key.isPrivate()).toBe(false);
    expect((await fetch(`${base}/.well-known/openpgpkey/lists.test/policy`)).status).toBe(200);
    expect((await fetch(`${base}${wkdPath('nobody@lists.test')}`)).status).toBe(404);
  });

  it('CORS admits extension origins and nothing else', async () => {
    const ok = await fetch(`${base}/v1/lists/${LIST}`, { headers: { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('chrome-extension://abcdefghijklmnopabcdefghijklmnop');
    const fx = await fetch(`${base}/v1/lists/${LIST}`, { headers: { origin: 'moz-extension://0b3c9a4e-1111-4d2b-9c4e-0123456789ab' } });
    expect(fx.headers.get('access-control-allow-origin')).toBe('moz-extension://0b3c9a4e-1111-4d2b-9c4e-0123456789ab');
    const evil = await fetch(`${base}/v1/lists/${LIST}`, { headers: { origin: 'https://evil.example' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('subscription', () => {
  it('subscribe with a fresh key, confirm from the mailed token: a member', async () => {
    const r = await subscribeAndConfirm(LIST, carol);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'member', address: carol.address });
    const members = await api<{ members: Array<{ address: string }> }>('GET', `/v1/admin/lists/${LIST}/members`, undefined, admin);
    expect(members.body.members.map((m) => m.address)).toContain(carol.address);
  });

  it('a moderated list makes a confirmed subscriber pending until an operator approves', async () => {
    const dan = await person('dan@example.org');
    const r = await subscribeAndConfirm(MODERATED, dan);
    expect(r.body).toMatchObject({ status: 'pending-approval' });
    const pending = await api<{ pending: Array<{ address: string }> }>('GET', `/v1/admin/lists/${MODERATED}/pending`, undefined, admin);
    expect(pending.body.pending.map((p) => p.address)).toEqual([dan.address]);
    expect((await api('POST', `/v1/admin/lists/${MODERATED}/pending/${dan.address}/approve`, undefined, admin)).body).toMatchObject({ status: 'member' });
    const members = await api<{ members: Array<{ address: string }> }>('GET', `/v1/admin/lists/${MODERATED}/members`, undefined, admin);
    expect(members.body.members.map((m) => m.address)).toContain(dan.address);
  });

  it('people without the extension confirm with a page: GET shows a button, only POST acts', async () => {
    const erin = await person('erin@example.org');
    await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: erin.address, publicKey: erin.publicArmored });
    const mail = await mailTo(erin.address, 1);
    const read = await readMail(mail, { privateKey: erin.privateKey, senderKeys: [] });
    const link = /http:\/\/\S+subscriptions\/confirm\?token=\S+/.exec(read.message.text ?? '')![0];
    const pageRes = await fetch(link);
    expect(pageRes.status).toBe(200);
    expect(await pageRes.text()).toContain('<form method="post"');
    const token = new URL(link).searchParams.get('token')!;
    const res = await fetch(link.split('?')[0]!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${token}` });
    expect(await res.text()).toContain('You are now subscribed');
  });

  it('refuses a key whose user ID does not hold the address (KEY_USERID_MISMATCH)', async () => {
    const r = await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: 'mallory@example.org', publicKey: alice.publicArmored });
    expectError(r, 422, 'KEY_USERID_MISMATCH');
    expect(JSON.stringify(r.body)).not.toContain('alice@example.org');
  });

  it('refuses an expired key, a revoked key, and a malformed one, each with its code', async () => {
    const g = await openpgp.generateKey({ userIDs: [{ email: 'old@example.org' }], keyExpirationTime: 1, date: new Date(Date.now() - 60_000), format: 'armored' });
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: 'old@example.org', publicKey: g.publicKey }), 422, 'KEY_EXPIRED');
    const k = await person('gone@example.org');
    const revoked = await openpgp.revokeKey({ key: k.privateKey, format: 'armored' });
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: k.address, publicKey: revoked.publicKey }), 422, 'KEY_REVOKED');
    const broken = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n';
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: 'x@example.org', publicKey: broken }), 422, 'KEY_UNREADABLE');
  });

  it('a confirmation token works once (reuse refused), and a forged one is refused', async () => {
    const fay = await person('fay@example.org');
    await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: fay.address, publicKey: fay.publicArmored });
    const read = await readMail(await mailTo(fay.address, 1), { privateKey: fay.privateKey, senderKeys: [] });
    const token = CONFIRMATION_TOKEN_LINE.exec(read.message.text ?? '')![1]!;
    expect((await api('POST', `/v1/lists/${LIST}/subscriptions/confirm`, { token })).status).toBe(200);
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions/confirm`, { token }), 400, 'TOKEN_INVALID');
    const forged = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions/confirm`, { token: forged }), 400, 'TOKEN_INVALID');
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions/confirm`, { token: 'short' }), 400, 'BAD_REQUEST');
  });
});

describe('key life cycle', () => {
  it('key change by a request signed with the old key; the old key no longer logs in', async () => {
    const gus = await person('gus@example.org');
    await subscribeAndConfirm(LIST, gus);
    const fresh = await generateKey({ kind: 'subscriber', address: gus.address, passphrase: 'new' });
    const statement = requestStatement({ server: base, list: LIST, address: gus.address, action: 'key-change', nonce: 'kc-1', date: new Date().toISOString(), value: fresh.facts.fingerprint });
    const signature = await signStatement(statement, gus.privateKey);
    const r = await api('POST', `/v1/lists/${LIST}/requests`, { statement, signature, newPublicKey: fresh.publicKeyArmored });
    expect(r.body).toEqual({ status: 'key-changed' });
    // Replaying the same signed request is refused.
    expectError(await api('POST', `/v1/lists/${LIST}/requests`, { statement, signature, newPublicKey: fresh.publicKeyArmored }), 401, 'SIGNATURE_INVALID');
    const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: gus.address });
    const old = await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, gus.privateKey) });
    expectError(old, 401, 'SIGNATURE_INVALID');
    const newKey = await unlockPrivateKey(await parsePrivateKey(fresh.privateKeyArmored), 'new');
    const c2 = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: gus.address });
    expect((await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c2.body.challengeId, signature: await signStatement(c2.body.statement, newKey) })).status).toBe(200);
  });

  it('a key change signed by another key, or naming a different new key, is refused', async () => {
    const fresh = await generateKey({ kind: 'subscriber', address: bob.address, passphrase: 'x' });
    const statement = requestStatement({ server: base, list: LIST, address: bob.address, action: 'key-change', nonce: 'kc-evil', date: new Date().toISOString(), value: fresh.facts.fingerprint });
    expectError(await api('POST', `/v1/lists/${LIST}/requests`, { statement, signature: await signStatement(statement, carol.privateKey), newPublicKey: fresh.publicKeyArmored }), 401, 'SIGNATURE_INVALID');
    const other = await generateKey({ kind: 'subscriber', address: bob.address, passphrase: 'x' });
    expectError(await api('POST', `/v1/lists/${LIST}/requests`, { statement, signature: await signStatement(statement, bob.privateKey), newPublicKey: other.publicKeyArmored }), 401, 'SIGNATURE_INVALID');
    const stale = requestStatement({ server: base, list: LIST, address: bob.address, action: 'unsubscribe', nonce: 'old', date: new Date(Date.now() - 3600_000).toISOString() });
    expectError(await api('POST', `/v1/lists/${LIST}/requests`, { statement: stale, signature: await signStatement(stale, bob.privateKey) }), 401, 'SIGNATURE_INVALID');
  });

  it('a lost key is replaced by a fresh confirmation round with the new key', async () => {
    const hal = await person('hal@example.org');
    await subscribeAndConfirm(LIST, hal);
    const replacement = await person('hal@example.org');
    const r = await subscribeAndConfirm(LIST, replacement);
    expect(r.body).toMatchObject({ status: 'member' });
    const members = await api<{ members: Array<{ address: string; fingerprint: string }> }>('GET', `/v1/admin/lists/${LIST}/members?after=hak`, undefined, admin);
    expect(members.body.members.find((m) => m.address === hal.address)?.fingerprint).toBe(replacement.publicKey.getFingerprint().toUpperCase());
  });

  it('a revocation certificate upload stops deliveries to that key at once', async () => {
    const ivy = await person('ivy@example.org');
    await subscribeAndConfirm(LIST, ivy);
    const r = await api('POST', `/v1/lists/${LIST}/revocations`, { revocationCertificate: ivy.revocationCertificate });
    expect(r.body).toEqual({ status: 'revoked' });
    const members = await api<{ members: Array<{ address: string; keyState: string }> }>('GET', `/v1/admin/lists/${LIST}/members?after=iv`, undefined, admin);
    expect(members.body.members.find((m) => m.address === ivy.address)?.keyState).toBe('revoked');
    expectError(await api('POST', `/v1/lists/${LIST}/revocations`, { revocationCertificate: 'not a certificate' }), 400, 'BAD_REQUEST');
  });

  it('unsubscribe by a signed request, by mail confirmation, and by RFC 8058 one-click', async () => {
    const [jo, kim, lou] = await Promise.all([person('jo@example.org'), person('kim@example.org'), person('lou@example.org')]);
    for (const p of [jo, kim, lou]) await subscribeAndConfirm(LIST, p);
    const statement = requestStatement({ server: base, list: LIST, address: jo.address, action: 'unsubscribe', nonce: 'u-1', date: new Date().toISOString() });
    expect((await api('POST', `/v1/lists/${LIST}/requests`, { statement, signature: await signStatement(statement, jo.privateKey) })).body).toEqual({ status: 'unsubscribed' });

    const before = sink.to(kim.address).length;
    expect((await api('POST', `/v1/lists/${LIST}/unsubscribe`, { address: kim.address })).status).toBe(202);
    const mail = await mailTo(kim.address, before + 1);
    const token = /unsubscribe\/confirm\?token=([A-Za-z0-9_-]{43})/.exec(mail)![1]!;
    expect((await api('POST', `/v1/lists/${LIST}/unsubscribe/confirm`, { token })).body).toEqual({ status: 'unsubscribed' });
    // A stranger gets the same answer as a member and no mail is sent.
    const strangerBefore = sink.to('stranger@example.org').length;
    const s = await api('POST', `/v1/lists/${LIST}/unsubscribe`, { address: 'stranger@example.org' });
    expect(s.status).toBe(202);

    // One-click: the link is in every copy's List-Unsubscribe header.
    const raw = await compose(alice, LIST, await listPublicKey(dataDir, LIST), 'hello', 'one-click test');
    const loucount = sink.to(lou.address).length;
    await send(server.smtpPort, alice.address, LIST, raw);
    const copy = await mailTo(lou.address, loucount + 1);
    const url = /^List-Unsubscribe: ?<([^>]+)>/m.exec(copy.replace(/\r\n[ \t]+/g, ' '))![1]!;
    expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' })).status).toBe(200);
    const members = await api<{ members: Array<{ address: string }> }>('GET', `/v1/admin/lists/${LIST}/members`, undefined, admin);
    const left = members.body.members.map((m) => m.address);
    for (const p of [jo, kim, lou]) expect(left).not.toContain(p.address);
    expect(sink.to('stranger@example.org').length).toBe(strangerBefore);
  });

  it('the daily check warns members whose key expires within 14 days, once, sealed to their key', async () => {
    const soon = await person('soon@example.org', 3 * 86_400);
    await subscribeAndConfirm(LIST, soon);
    const before = sink.to(soon.address).length;
    const r = await api<{ warned: number }>('POST', '/v1/admin/key-expiry-check', undefined, admin);
    expect(r.body.warned).toBe(1);
    const warning = await mailTo(soon.address, before + 1);
    const fpr = soon.publicKey.getFingerprint().toUpperCase();
    expect(warning).not.toContain(fpr); // only inside the encryption
    const read = await readMail(warning, { privateKey: soon.privateKey, senderKeys: [await listPublicKey(dataDir, LIST)] });
    expect(read.verification.valid).toBe(true); // signed by the list key
    expect(read.message.text).toMatch(/expires on/);
    expect(read.message.text).toContain(fpr);
    // What the owner is told (the digest, or a sealed summary when it is off) is ops.test.ts's.
    // Once per key: a second run warns nobody.
    expect((await api<{ warned: number }>('POST', '/v1/admin/key-expiry-check', undefined, admin)).body.warned).toBe(0);
  });

  it('switching delivery form by a signed request', async () => {
    const statement = requestStatement({ server: base, list: LIST, address: alice.address, action: 'delivery', nonce: 'd-1', date: new Date().toISOString(), value: 'inline' });
    expect((await api('POST', `/v1/lists/${LIST}/requests`, { statement, signature: await signStatement(statement, alice.privateKey) })).body).toEqual({ status: 'delivery-changed' });
  });
});

describe('delivery form and Autocrypt', () => {
  it('a subscriber who chose inline gets an armored text body; PGP/MIME stays the default; both carry the list key as Autocrypt', async () => {
    const webmail = await person('webmail@example.org');
    await subscribeAndConfirm(LIST, webmail); // subscribeAndConfirm asks for inline delivery
    const before = { webmail: sink.to(webmail.address).length, bob: sink.to(bob.address).length };
    await send(server.smtpPort, alice.address, LIST, await compose(alice, LIST, await listPublicKey(dataDir, LIST), 'Read me in webmail', 'inline test'));
    const inline = await mailTo(webmail.address, before.webmail + 1);
    const mime = await mailTo(bob.address, before.bob + 1);
    const headOf = (m: string) => m.split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
    expect(headOf(inline)).toMatch(/^Content-Type: text\/plain; charset=us-ascii$/m);
    expect(inline.split('\r\n\r\n').slice(1).join('\r\n\r\n')).toMatch(/^-----BEGIN PGP MESSAGE-----\r\n/);
    expect(headOf(mime)).toMatch(/^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted";/m);
    const read = await readMail(inline, { privateKey: webmail.privateKey, senderKeys: [alice.publicKey] });
    expect(read.message.text).toBe('Read me in webmail');
    expect(read.verification.valid).toBe(true);
    for (const m of [inline, mime]) {
      const value = /^Autocrypt: (.*)$/m.exec(headOf(m))![1]!;
      expect(value).toMatch(new RegExp(`^addr=${LIST}; prefer-encrypt=mutual; keydata=`));
      const keydata = value.split('keydata=')[1]!.replace(/\s+/g, '');
      const key = await openpgp.readKey({ binaryKey: new Uint8Array(Buffer.from(keydata, 'base64')) });
      expect(key.getFingerprint().toUpperCase()).toBe((await listPublicKey(dataDir, LIST)).getFingerprint().toUpperCase());
    }
  });
});

describe('the archive', () => {
  it('end to end: a post through SMTP is read from the archive by its sender and by a member who joined later, signature verified with the fetched key', async () => {
    const marker = `ARCHIVE-${Date.now()}`;
    await send(server.smtpPort, alice.address, LIST, await compose(alice, LIST, await listPublicKey(dataDir, LIST), `Archived ${marker}\n`, `Subject ${marker}`));
    await sink.waitFor(() => sink.to(bob.address).some((m) => m.raw.includes('+bounces-') || true) && sink.to(bob.address).length > 0, 20_000);
    const late = await person('late@example.org');
    await subscribeAndConfirm(LIST, late); // joins after the post

    for (const reader of [alice, late]) {
      const token = await login(LIST, reader);
      const threads = await api<ThreadPage>('GET', `/v1/lists/${LIST}/archive/threads?limit=50`, undefined, token);
      expect(threads.status).toBe(200);
      expect(JSON.stringify(threads.body)).not.toContain(marker); // metadata only
      const ids = threads.body.threads.flatMap((t) => t.messages.map((m) => m.id));
      const page = await api<ArchiveMessages>('POST', `/v1/lists/${LIST}/archive/messages`, { ids }, token);
      expect(page.status).toBe(200);
      const subjects: string[] = [];
      for (const m of page.body.messages) {
        const bytes = assembleCopy(Buffer.from(m.wrappedKey, 'base64'), Buffer.from(m.body, 'base64'));
        const first = await readMessage(bytes, { privateKey: reader.privateKey, senderKeys: [] });
        // Fetch the sender's key from the list by the signature's issuer, then verify with it.
        const signerId = await issuerOf(bytes, reader);
        const key = await api<{ publicKey: string; fingerprint: string }>('GET', `/v1/lists/${LIST}/members/keys/${signerId}`, undefined, token);
        expect(key.status).toBe(200);
        const verified = await readMessage(bytes, { privateKey: reader.privateKey, senderKeys: [(await readPublicKey(key.body.publicKey)).key] });
        expect(verified.verification.valid).toBe(true);
        subjects.push(first.message.subject ?? '');
      }
      expect(subjects).toContain(`Subject ${marker}`);
    }
  });

  it('threads group replies under their root', async () => {
    const listKey = await listPublicKey(dataDir, LIST);
    const { composePost } = await import('../../../shared/index.ts');
    const root = await composePost({ message: { subject: 'root', from: { address: alice.address }, to: [{ address: LIST }], text: 'root' }, senderKey: alice.privateKey, listKey });
    await send(server.smtpPort, alice.address, LIST, root.pgpMime);
    const reply = await composePost({ message: { subject: 'Re: root', from: { address: bob.address }, to: [{ address: LIST }], text: 'reply', inReplyTo: root.messageId, references: [root.messageId] }, senderKey: bob.privateKey, listKey });
    await send(server.smtpPort, bob.address, LIST, reply.pgpMime);
    const token = await login(LIST, bob);
    const threads = await api<ThreadPage>('GET', `/v1/lists/${LIST}/archive/threads`, undefined, token);
    const thread = threads.body.threads.find((t) => t.messages.some((m) => m.messageId === root.messageId))!;
    expect(thread.messages.map((m) => m.messageId)).toEqual([root.messageId, reply.messageId]);
  });

  it('a permalink finds its thread by archive id or Message-ID; unknown posts and bad queries are refused', async () => {
    const token = await login(LIST, bob);
    const page = await api<ThreadPage>('GET', `/v1/lists/${LIST}/archive/threads?limit=100`, undefined, token);
    const thread = page.body.threads.find((t) => t.messages.length >= 2)!;
    const reply = thread.messages[1]!;
    const byId = await api<ThreadPage['threads'][number]>('GET', `/v1/lists/${LIST}/archive/thread?id=${reply.id}`, undefined, token);
    expect(byId.status).toBe(200);
    expect(byId.body).toEqual(thread);
    const byMid = await api<ThreadPage['threads'][number]>('GET', `/v1/lists/${LIST}/archive/thread?messageId=${encodeURIComponent(reply.messageId!)}`, undefined, token);
    expect(byMid.body).toEqual(thread);
    expectError(await api('GET', `/v1/lists/${LIST}/archive/thread?id=999999`, undefined, token), 404, 'NOT_FOUND');
    expectError(await api('GET', `/v1/lists/${LIST}/archive/thread?messageId=${encodeURIComponent('<nobody@x>')}`, undefined, token), 404, 'NOT_FOUND');
    expect((await api('GET', `/v1/lists/${LIST}/archive/thread?id=abc`, undefined, token)).status).toBe(400);
    expect((await api('GET', `/v1/lists/${LIST}/archive/thread`, undefined, token)).status).toBe(400);
    expect((await api('GET', `/v1/lists/${LIST}/archive/thread?messageId=${'x'.repeat(2000)}`, undefined, token)).status).toBe(400);
    expectError(await api('GET', `/v1/lists/${LIST}/archive/thread?id=${reply.id}`), 401, 'UNAUTHORIZED');
  });
});

describe('attacks that must fail', () => {
  it('a non-member cannot read the archive: the log-in fails, and without a session nothing is served', async () => {
    const mallory = await person('mallory@example.org');
    const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: mallory.address });
    expect(c.status).toBe(200); // challenges are issued to anyone: membership is not revealed here
    const l = await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, mallory.privateKey) });
    expectError(l, 401, 'SIGNATURE_INVALID');
    expectError(await api('GET', `/v1/lists/${LIST}/archive/threads`), 401, 'UNAUTHORIZED');
    const r = await api('POST', `/v1/lists/${LIST}/archive/messages`, { ids: [1] });
    expectError(r, 401, 'UNAUTHORIZED');
    expect(JSON.stringify(r.body)).not.toMatch(/wrappedKey|body/);
  });

  it('a removed member\'s session, issued before removal, ends at once', async () => {
    const mo = await person('mo@example.org');
    await subscribeAndConfirm(LIST, mo);
    const token = await login(LIST, mo);
    expect((await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, token)).status).toBe(200);
    expect((await api('DELETE', `/v1/admin/lists/${LIST}/members/${mo.address}`, undefined, admin)).status).toBe(200);
    expectError(await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, token), 401, 'UNAUTHORIZED');
    expectError(await api('POST', `/v1/lists/${LIST}/archive/messages`, { ids: [1] }, token), 401, 'UNAUTHORIZED');
  });

  it('a challenge replayed is refused', async () => {
    const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: bob.address });
    const signature = await signStatement(c.body.statement, bob.privateKey);
    expect((await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature })).status).toBe(200);
    expectError(await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature }), 401, 'CHALLENGE_INVALID');
  });

  it('a challenge signed by another key is refused, and is spent by the attempt', async () => {
    const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: bob.address });
    expectError(await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, carol.privateKey) }), 401, 'SIGNATURE_INVALID');
    expectError(await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, bob.privateKey) }), 401, 'CHALLENGE_INVALID');
  });

  it('a statement other than the challenge, even signed by the member, is refused', async () => {
    const c = await api<{ challengeId: string; statement: string; expiresAt: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: bob.address });
    const other = loginStatement({ server: base, list: LIST, address: bob.address, challengeId: c.body.challengeId, expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    expectError(await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(other, bob.privateKey) }), 401, 'SIGNATURE_INVALID');
  });

  it('an expired challenge is refused', async () => {
    const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: bob.address });
    // Age the challenge in the database rather than wait two minutes.
    await server.sql.run('UPDATE challenges SET expires_at = ? WHERE expires_at > ?', [Date.now() - 1, Date.now()]);
    expectError(await api('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, bob.privateKey) }), 401, 'CHALLENGE_INVALID');
  });

  it('a forged or tampered session token is refused', async () => {
    const token = await login(LIST, bob);
    const tampered = token.slice(0, 10) + (token[10] === 'A' ? 'B' : 'A') + token.slice(11);
    expectError(await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, tampered), 401, 'UNAUTHORIZED');
    expectError(await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, 'A'.repeat(43)), 401, 'UNAUTHORIZED');
    expectError(await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, 'not a token'), 401, 'UNAUTHORIZED');
    // A session for one list does not open another.
    expectError(await api('GET', `/v1/lists/${MODERATED}/archive/threads`, undefined, token), 401, 'UNAUTHORIZED');
  });

  it('admin calls without a token or with a wrong one are refused and leak nothing', async () => {
    for (const token of [undefined, 'wrong', admin.slice(0, -1)]) {
      const r = await api('GET', `/v1/admin/lists/${LIST}/members`, undefined, token);
      expectError(r, 401, 'UNAUTHORIZED');
      expect(JSON.stringify(r.body)).not.toContain('@example.org');
    }
    expectError(await api('DELETE', `/v1/admin/lists/${LIST}/members/${bob.address}`, undefined, 'wrong'), 401, 'UNAUTHORIZED');
  });

  it('oversized and malformed bodies get 413 and 400, never a crash', async () => {
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: 'a@example.org', publicKey: 'x'.repeat(200_000) }), 413, 'PAYLOAD_TOO_LARGE');
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions`, '{"address": '), 400, 'BAD_REQUEST');
    expectError(await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: 42 }), 400, 'BAD_REQUEST');
    expectError(await api('POST', `/v1/lists/${LIST}/archive/messages`, { ids: 'all' }, await login(LIST, bob)), 400, 'BAD_REQUEST');
    expect((await api('GET', '/health')).status).toBe(200);
  });

  it('a message id from another list is not served', async () => {
    const token = await login(LIST, bob);
    expectError(await api('POST', `/v1/lists/${LIST}/archive/messages`, { ids: [999_999] }, token), 404, 'NOT_FOUND');
  });
});

describe('operator API', () => {
  it('lists the lists with counts, adds a member by key (policy applies), and refuses unknown pending approvals', async () => {
    const lists = await api<Array<{ address: string; members: number; posts: number; listKey: { fingerprint: string } }>>('GET', '/v1/admin/lists', undefined, admin);
    expect(lists.status).toBe(200);
    expect(lists.body.map((l) => l.address).sort()).toEqual([MODERATED, HELD, LIST].sort());
    const nia = await person('nia@example.org');
    expect((await api('POST', `/v1/admin/lists/${LIST}/members`, { address: nia.address, publicKey: nia.publicArmored }, admin)).status).toBe(201);
    expectError(await api('POST', `/v1/admin/lists/${LIST}/members`, { address: 'other@example.org', publicKey: nia.publicArmored }, admin), 422, 'KEY_USERID_MISMATCH');
    expectError(await api('POST', `/v1/admin/lists/${LIST}/pending/nobody@example.org/approve`, undefined, admin), 404, 'NOT_FOUND');
    expectError(await api('DELETE', `/v1/admin/lists/${LIST}/members/nobody@example.org`, undefined, admin), 404, 'NOT_FOUND');
    expectError(await api('GET', '/v1/admin/lists/nolist@lists.test/members', undefined, admin), 404, 'NOT_FOUND');
  });

  it('held posts: listed without content, approved (delivered) or rejected (bounced)', async () => {
    const listKey = await listPublicKey(dataDir, HELD);
    const marker = `HELD-${Date.now()}`;
    const bobBefore = sink.to(bob.address).length;
    await send(server.smtpPort, alice.address, HELD, await compose(alice, HELD, listKey, `first ${marker}`, `held ${marker}`));
    await send(server.smtpPort, alice.address, HELD, await compose(alice, HELD, listKey, `second ${marker}`, `held ${marker}`));
    let held: Array<{ id: number; sender: string }> = [];
    for (let i = 0; i < 100 && held.length < 2; i++) {
      held = (await api<{ held: Array<{ id: number; sender: string }> }>('GET', `/v1/admin/lists/${HELD}/held`, undefined, admin)).body.held;
      if (held.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    expect(held).toHaveLength(2);
    expect(JSON.stringify(held)).not.toContain(marker);
    expect(held[0]!.sender).toBe(alice.address);
    const approved = await api<{ outcome: { result: string } }>('POST', `/v1/admin/lists/${HELD}/held/${held[0]!.id}/approve`, undefined, admin);
    expect(approved.body.outcome.result).toBe('accepted');
    await sink.waitFor(() => sink.to(bob.address).length > bobBefore, 20_000, 'approved copy to bob');
    const rejected = await api<{ outcome: { result: string; code: string } }>('POST', `/v1/admin/lists/${HELD}/held/${held[1]!.id}/reject`, undefined, admin);
    expect(rejected.body.outcome).toMatchObject({ result: 'refused', code: 'REJECTED_BY_MODERATOR' });
    expect((await api<{ held: unknown[] }>('GET', `/v1/admin/lists/${HELD}/held`, undefined, admin)).body.held).toHaveLength(0);
    expectError(await api('POST', `/v1/admin/lists/${HELD}/held/${held[1]!.id}/approve`, undefined, admin), 404, 'NOT_FOUND');
  });

  it('decisions on one held post at once: one runs, the others are told (409 under way, 404 decided)', async () => {
    // Without the claim both ran: the post delivered and its sender also told it was
    // rejected, or a second approval bounced as a duplicate.
    const listKey = await listPublicKey(dataDir, HELD);
    const marker = `RACE-${Date.now()}`;
    // The rejection is a bounce; bob gets only copies of this list's posts.
    const bouncesToAlice = () => sink.to(alice.address).filter((m) => m.raw.includes(`Subject: Your post to ${HELD} was not delivered`)).length;
    const before = { bob: sink.to(bob.address).length, aliceBounces: bouncesToAlice() };
    await send(server.smtpPort, alice.address, HELD, await compose(alice, HELD, listKey, `raced ${marker}`, `held ${marker}`));
    let held: Array<{ id: number }> = [];
    for (let i = 0; i < 200 && held.length < 1; i++) {
      held = (await api<{ held: Array<{ id: number }> }>('GET', `/v1/admin/lists/${HELD}/held`, undefined, admin)).body.held;
      if (held.length < 1) await new Promise((r) => setTimeout(r, 50));
    }
    expect(held).toHaveLength(1);
    const id = held[0]!.id;
    const actions = ['approve', 'reject', 'approve', 'reject'] as const;
    const answers = await Promise.all(actions.map((a) => api<{ outcome?: { result: string }; error?: string }>('POST', `/v1/admin/lists/${HELD}/held/${id}/${a}`, undefined, admin)));
    const ran = answers.map((r, i) => ({ r, action: actions[i]! })).filter(({ r }) => r.status === 200);
    expect(ran, JSON.stringify(answers.map((r) => [r.status, r.body]))).toHaveLength(1);
    for (const r of answers.filter((x) => x.status !== 200)) {
      expect([[409, 'CONFLICT'], [404, 'NOT_FOUND']]).toContainEqual([r.status, r.body.error]);
    }
    const winner = ran[0]!.action;
    expect(ran[0]!.r.body.outcome!.result).toBe(winner === 'approve' ? 'accepted' : 'refused');
    expect((await api<{ held: unknown[] }>('GET', `/v1/admin/lists/${HELD}/held`, undefined, admin)).body.held).toHaveLength(0);
    if (winner === 'approve') {
      await sink.waitFor(() => sink.to(bob.address).length > before.bob, 20_000, 'approved copy to bob');
    } else {
      await sink.waitFor(() => bouncesToAlice() > before.aliceBounces, 20_000, 'rejection to alice');
    }
    // Whatever ran, nothing else did: one copy to bob or one bounce to alice, never both
    // and never a second, once nothing is left in the queue.
    for (let i = 0; i < 400; i++) {
      const left = await server.sql.get<{ n: number }>("SELECT count(*) AS n FROM deliveries WHERE state IN ('queued','claimed','sending')");
      if (Number(left!.n) === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(sink.to(bob.address).length - before.bob).toBe(winner === 'approve' ? 1 : 0);
    expect(bouncesToAlice() - before.aliceBounces).toBe(winner === 'approve' ? 0 : 1);
  });

  it('delivery failures: a copy the relay refuses for good is listed for the operator', async () => {
    const oz = await person('oz@example.org');
    await api('POST', `/v1/admin/lists/${LIST}/members`, { address: oz.address, publicKey: oz.publicArmored }, admin);
    sink.refuse = (rcpt) => (rcpt === oz.address ? 550 : undefined);
    try {
      await send(server.smtpPort, alice.address, LIST, await compose(alice, LIST, await listPublicKey(dataDir, LIST), 'to everyone', 'failure test'));
      let failures: Array<{ rcpt: string; state: string; reason: string }> = [];
      for (let i = 0; i < 200 && !failures.some((f) => f.rcpt === oz.address); i++) {
        failures = (await api<{ failures: typeof failures }>('GET', `/v1/admin/lists/${LIST}/failures`, undefined, admin)).body.failures;
        await new Promise((r) => setTimeout(r, 50));
      }
      const f = failures.find((x) => x.rcpt === oz.address)!;
      expect(f.state).toBe('failed');
      expect(f.reason).toMatch(/^SMTP_550: 550 /);
    } finally {
      sink.refuse = () => undefined;
    }
  });

  it('member keys: unknown key 404, and a non-hex id is refused', async () => {
    const token = await login(LIST, bob);
    expectError(await api('GET', `/v1/lists/${LIST}/members/keys/${'0'.repeat(40)}`, undefined, token), 404, 'NOT_FOUND');
    expectError(await api('GET', `/v1/lists/${LIST}/members/keys/zzzz`, undefined, token), 400, 'BAD_REQUEST');
    expectError(await api('GET', `/v1/lists/${LIST}/members/keys/${alice.publicKey.getFingerprint()}`), 401, 'UNAUTHORIZED');
  });

  it('the pages for people: unsubscribe confirmation page and the archive pointer', async () => {
    const page = await fetch(`${base}/v1/lists/${LIST}/unsubscribe/confirm?token=${'A'.repeat(43)}`);
    expect(await page.text()).toContain('<form method="post"');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await (await fetch(`${base}/lists/${LIST}/archive`)).text()).toContain('end-to-end encrypted');
    expectError(await api('GET', `/v1/lists/${LIST}/unsubscribe/confirm?token=<script>`), 400, 'BAD_REQUEST');
  });
});

// Last: the burst fills the per-address window for this test's own address.
describe('rate limits', () => {
  it('a burst over the per-address limit is refused with 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await api('POST', `/v1/lists/${LIST}/auth/challenge`, { address: 'burst@example.org' })).status);
    expect(statuses.slice(0, 20).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
    const r = await api('POST', `/v1/lists/${LIST}/auth/challenge`, { address: 'burst@example.org' });
    expectError(r, 429, 'RATE_LIMITED');
    // Another address is not affected by this one's burst.
    expect((await api('POST', `/v1/lists/${LIST}/auth/challenge`, { address: 'calm@example.org' })).status).toBe(200);
  });
});

async function issuerOf(bytes: Uint8Array, reader: Person): Promise<string> {
  const m = await openpgp.readMessage({ binaryMessage: bytes });
  const d = await openpgp.decrypt({ message: m, decryptionKeys: reader.privateKey, format: 'binary' });
  const sig = await d.signatures[0]!.signature;
  const p = sig.packets[0]!;
  return p.issuerFingerprint ? Buffer.from(p.issuerFingerprint).toString('hex').toUpperCase() : p.issuerKeyID.toHex().toUpperCase();
}
