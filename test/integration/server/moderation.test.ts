// Moderating in the browser (issue 12 item 4), over real HTTP and SMTP against
// the whole list server: a moderator signs in with their key, reads held posts
// re-wrapped to that key (decrypted here with openpgp.js, as the extension does),
// and approves or rejects them with signed decisions. Strangers, members who do
// not moderate, forged, altered and replayed decisions, other lists and other
// sessions' tokens are refused.

import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decisionStatement, parseModerationStatement, signStatement, type ChallengeResponse, type HeldList, type HeldMessages, type LoginResponse,
} from '../../../shared/index.ts';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { getList } from '../../../server/store/lists.ts';
import { setNotifySettings } from '../../../server/store/notify.ts';
import { findMarker, scan } from './scan.ts';
import { addList, compose, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person } from './harness.ts';

const MOD = 'mod@lists.test';
const OTHER = 'other@lists.test';

let sink: Sink, dataDir: string, server: RunningServer, base: string, admin: string;
let alice: Person, bob: Person, owner: Person, mara: Person;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('moderation');
  await initData(dataDir, sink.port, { http: { port: 0, limits: { challengePerIp: { max: 1000 } } } });
  [alice, bob, owner, mara] = await Promise.all([person('alice@example.org'), person('bob@example.org'), person('owner@example.org'), person('mara@example.org')]);
  // The owner is not subscribed to the list they own: their key is the one registered on another list.
  await addList(dataDir, MOD, { owner: owner.address, postPolicy: 'moderated' }, [alice, bob, mara]);
  await addList(dataDir, OTHER, { owner: 'someone@example.org', postPolicy: 'moderated' }, [owner, mara, alice]);
  setModerators(MOD, [mara.address]);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), stdout: false }) });
  base = `http://127.0.0.1:${server.httpPort}`;
  admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function setModerators(list: string, moderators: string[]): Promise<void> {
  const sql = await openData(dataDir, SECRET);
  try {
    await setNotifySettings(sql, (await getList(sql, list))!.id, { moderators });
  } finally {
    await sql.close();
  }
}

interface Reply<T> { status: number; body: T }

async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, token?: string): Promise<Reply<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await res.json() as T };
}

function expectError(r: Reply<unknown>, status: number, code: string): void {
  expect(r.status).toBe(status);
  expect(r.body).toMatchObject({ error: code });
}

const mod = (list: string) => `/v1/lists/${encodeURIComponent(list)}/moderation`;

/** The moderator's log-in: the challenge statement signed with their key. */
async function signIn(list: string, who: Person, signer: Person = who): Promise<{ reply: Reply<LoginResponse>; server: string }> {
  const ch = await api<ChallengeResponse>('POST', `${mod(list)}/auth/challenge`, { address: who.address });
  expect(ch.status).toBe(200);
  const fields = parseModerationStatement(ch.body.statement, 'moderate-login');
  expect(fields).toMatchObject({ list, address: who.address, challenge: ch.body.challengeId });
  const signature = await signStatement(ch.body.statement, signer.privateKey);
  return { reply: await api<LoginResponse>('POST', `${mod(list)}/auth/login`, { challengeId: ch.body.challengeId, signature }), server: fields!.server! };
}

async function decision(server: string, list: string, who: Person, held: number, action: 'approve' | 'reject', opts: { nonce?: string; date?: Date; signer?: Person } = {}) {
  const statement = decisionStatement({
    server, list, address: who.address, held, action, nonce: opts.nonce ?? randomBytes(18).toString('base64url'), date: (opts.date ?? new Date()).toISOString(),
  });
  return { statement, signature: await signStatement(statement, (opts.signer ?? who).privateKey) };
}

async function heldNow(token: string, n: number): Promise<HeldList['held']> {
  let held: HeldList['held'] = [];
  const end = Date.now() + 30_000;
  while (held.length < n && Date.now() < end) {
    held = (await api<HeldList>('GET', `${mod(MOD)}/held`, undefined, token)).body.held;
    if (held.length < n) await new Promise((r) => setTimeout(r, 50));
  }
  return held;
}

describe('moderating held posts in the browser', () => {
  let ownerToken: string, serverUrl: string;
  const marker = `MODERATED-${Date.now()}`;
  let held: HeldList['held'];

  it('the owner signs in with the key registered on another list and reads held posts decrypted with that key', async () => {
    const listKey = await listPublicKey(dataDir, MOD);
    for (const n of ['one', 'two', 'three']) await send(server.smtpPort, alice.address, MOD, await compose(alice, MOD, listKey, `post ${n} ${marker}`, `held ${n}`));
    const { reply, server: s } = await signIn(MOD, owner);
    expect(reply.status).toBe(200);
    expect(reply.body.address).toBe(owner.address);
    expect(reply.body.fingerprint).toBe(owner.publicKey.getFingerprint().toUpperCase());
    ownerToken = reply.body.token;
    serverUrl = s;
    held = await heldNow(ownerToken, 3);
    expect(held).toHaveLength(3);
    expect(held[0]).toMatchObject({ sender: alice.address, reason: expect.any(String) });
    // The listing is metadata only.
    expect(JSON.stringify(held)).not.toContain(marker);

    const got = await api<HeldMessages>('POST', `${mod(MOD)}/held/messages`, { ids: held.map((h) => h.id) }, ownerToken);
    expect(got.status).toBe(200);
    expect(got.body.messages).toHaveLength(3);
    for (const [i, m] of got.body.messages.entries()) {
      expect(m.meta.id).toBe(held[i]!.id);
      expect(m.senderKey?.address).toBe(alice.address);
      const bytes = new Uint8Array([...Buffer.from(m.wrappedKey, 'base64'), ...Buffer.from(m.body, 'base64')]);
      const message = await openpgp.readMessage({ binaryMessage: bytes });
      const senderKey = await openpgp.readKey({ armoredKey: m.senderKey!.publicKey });
      const out = await openpgp.decrypt({ message, decryptionKeys: owner.privateKey, verificationKeys: senderKey, expectSigned: true, format: 'utf8' });
      expect(await textOf(String(out.data))).toContain(`post ${['one', 'two', 'three'][i]} ${marker}`);
      // Only the moderator's key opens it: another member's key does not.
      await expect(openpgp.decrypt({ message: await openpgp.readMessage({ binaryMessage: bytes }), decryptionKeys: bob.privateKey })).rejects.toThrow();
    }
  });

  it('approve with a signed decision: the post goes to every member', async () => {
    const bobBefore = sink.to(bob.address).length;
    const res = await api('POST', `${mod(MOD)}/held/${held[0]!.id}/decision`, await decision(serverUrl, MOD, owner, held[0]!.id, 'approve'), ownerToken);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ held: held[0]!.id, action: 'approve', result: 'accepted', code: null });
    await sink.waitFor(() => sink.to(bob.address).length > bobBefore, 30_000, 'the approved copy to bob');
    // The copy is bob's to read: it decrypts with his key and carries the post.
    const copy = sink.to(bob.address).at(-1)!.raw.toString("utf8");
    const armored = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(copy)![0];
    const out = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: armored }), decryptionKeys: bob.privateKey, format: 'utf8' });
    expect(await textOf(String(out.data))).toContain(`post one ${marker}`);
    expect((await heldNow(ownerToken, 0)).map((h) => h.id)).not.toContain(held[0]!.id);
  });

  it('forged, altered, stale and replayed decisions are refused; a valid reject removes the post', async () => {
    const id = held[1]!.id;
    const url = `${mod(MOD)}/held/${id}/decision`;
    // Signed by another member's key (bob), in the owner's name.
    expectError(await api('POST', url, await decision(serverUrl, MOD, owner, id, 'reject', { signer: bob }), ownerToken), 401, 'SIGNATURE_INVALID');
    // A valid signature over one statement, sent with another.
    const good = await decision(serverUrl, MOD, owner, id, 'reject');
    expectError(await api('POST', url, { ...good, statement: good.statement.replace('action: reject', 'action: approve') }, ownerToken), 401, 'SIGNATURE_INVALID');
    // Signed for another held post.
    expectError(await api('POST', `${mod(MOD)}/held/${held[2]!.id}/decision`, good, ownerToken), 401, 'SIGNATURE_INVALID');
    // Made for another server, or an hour old.
    expectError(await api('POST', url, await decision('https://elsewhere.example', MOD, owner, id, 'reject'), ownerToken), 401, 'SIGNATURE_INVALID');
    expectError(await api('POST', url, await decision(serverUrl, MOD, owner, id, 'reject', { date: new Date(Date.now() - 3600_000) }), ownerToken), 401, 'SIGNATURE_INVALID');
    // A member's signed request (another statement kind) is not a decision.
    expectError(await api('POST', url, { statement: 'letterlock-request: v1\n', signature: good.signature }, ownerToken), 401, 'SIGNATURE_INVALID');
    // No session: nothing.
    expectError(await api('POST', url, good), 401, 'UNAUTHORIZED');
    expect((await heldNow(ownerToken, 2)).map((h) => h.id)).toContain(id);

    const res = await api('POST', url, good, ownerToken);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ held: id, action: 'reject', result: 'refused', code: 'REJECTED_BY_MODERATOR' });
    expect((await heldNow(ownerToken, 1)).map((h) => h.id)).not.toContain(id);
    // The same decision again: the post is gone.
    expectError(await api('POST', url, good, ownerToken), 404, 'NOT_FOUND');
    // Its nonce used again, for another post: a replay.
    const nonce = parseModerationStatement(good.statement, 'moderate')!.nonce!;
    expectError(await api('POST', `${mod(MOD)}/held/${held[2]!.id}/decision`, await decision(serverUrl, MOD, owner, held[2]!.id, 'approve', { nonce }), ownerToken), 409, 'CONFLICT');
    expect((await heldNow(ownerToken, 1)).map((h) => h.id)).toEqual([held[2]!.id]);
  });

  it('a member who does not moderate, a stranger and a wrong key cannot sign in', async () => {
    expectError((await signIn(MOD, bob)).reply, 401, 'SIGNATURE_INVALID');
    const stranger = await person('stranger@example.org');
    expectError((await signIn(MOD, stranger)).reply, 401, 'SIGNATURE_INVALID');
    // The owner's address, bob's signature.
    expectError((await signIn(MOD, owner, bob)).reply, 401, 'SIGNATURE_INVALID');
    // An archive challenge is not a moderation challenge.
    const ch = await api<ChallengeResponse>('POST', `/v1/lists/${encodeURIComponent(MOD)}/auth/challenge`, { address: mara.address });
    const signature = await signStatement(ch.body.statement, mara.privateKey);
    expectError(await api('POST', `${mod(MOD)}/auth/login`, { challengeId: ch.body.challengeId, signature }), 401, 'CHALLENGE_INVALID');
  });

  it('a moderator of one list is refused on another, and tokens do not cross lists or the archive', async () => {
    const { reply } = await signIn(MOD, mara);
    expect(reply.status).toBe(200);
    const token = reply.body.token;
    expect((await api('GET', `${mod(MOD)}/held`, undefined, token)).status).toBe(200);
    // Mara is a member of OTHER but moderates only MOD.
    expectError((await signIn(OTHER, mara)).reply, 401, 'SIGNATURE_INVALID');
    expectError(await api('GET', `${mod(OTHER)}/held`, undefined, token), 401, 'UNAUTHORIZED');
    expectError(await api('POST', `${mod(OTHER)}/held/messages`, { ids: [held[2]!.id] }, token), 401, 'UNAUTHORIZED');
    // A held post of MOD asked for through... MOD is fine; an id of another list is not found.
    const otherHeld = await sendHeldTo(OTHER);
    expectError(await api('POST', `${mod(MOD)}/held/messages`, { ids: [otherHeld] }, token), 404, 'NOT_FOUND');
    expectError(await api('POST', `${mod(MOD)}/held/${otherHeld}/decision`, await decision(serverUrl, MOD, mara, otherHeld, 'approve'), token), 404, 'NOT_FOUND');
    // A moderator's token is not an archive session.
    expectError(await api('GET', `/v1/lists/${encodeURIComponent(MOD)}/archive/threads`, undefined, token), 401, 'UNAUTHORIZED');
    // Nor the other way round.
    const ach = await api<ChallengeResponse>('POST', `/v1/lists/${encodeURIComponent(MOD)}/auth/challenge`, { address: bob.address });
    const alogin = await api<LoginResponse>('POST', `/v1/lists/${encodeURIComponent(MOD)}/auth/login`, { challengeId: ach.body.challengeId, signature: await signStatement(ach.body.statement, bob.privateKey) });
    expect(alogin.status).toBe(200);
    expectError(await api('GET', `${mod(MOD)}/held`, undefined, alogin.body.token), 401, 'UNAUTHORIZED');

    // No longer a moderator: the session ends at the next request.
    setModerators(MOD, []);
    expectError(await api('GET', `${mod(MOD)}/held`, undefined, token), 401, 'UNAUTHORIZED');
    setModerators(MOD, [mara.address]);
    expectError(await api('GET', `${mod(MOD)}/held`, undefined, token), 401, 'UNAUTHORIZED');
  });

  it('a moderator named in the synced Mailman roster may sign in; a roster member may not', async () => {
    const sql = await openData(dataDir, SECRET);
    try {
      const id = (await getList(sql, MOD))!.id;
      // As server/mailman/sync.ts leaves it: alice (key registered) as a Mailman moderator, bob as a plain member.
      (await sql.run("INSERT INTO mailman_roster (list_id, address, role) VALUES (?,?,'moderator'), (?,?,'member')", [id, alice.address, id, bob.address]));
    } finally {
      await sql.close();
    }
    const { reply } = await signIn(MOD, alice);
    expect(reply.status).toBe(200);
    expectError((await signIn(MOD, bob)).reply, 401, 'SIGNATURE_INVALID');
  });

  it('bad input gets a clear error', async () => {
    expectError(await api('POST', `${mod(MOD)}/held/messages`, { ids: Array.from({ length: 11 }, (_, i) => i + 1) }, ownerToken), 400, 'BAD_REQUEST');
    expectError(await api('POST', `${mod(MOD)}/held/messages`, { ids: [] }, ownerToken), 400, 'BAD_REQUEST');
    expectError(await api('POST', `${mod(MOD)}/held/abc/decision`, { statement: 'x', signature: 'y' }, ownerToken), 400, 'BAD_REQUEST');
    expectError(await api('POST', `${mod('nolist@lists.test')}/auth/challenge`, { address: owner.address }), 404, 'NOT_FOUND');
    expectError(await api('POST', `${mod(MOD)}/auth/login`, { challengeId: 'A'.repeat(43), signature: '-----BEGIN PGP SIGNATURE-----\n' }), 401, 'CHALLENGE_INVALID');
    // The operator API still sees what is left.
    expect((await api<{ held: unknown[] }>('GET', `/v1/admin/lists/${MOD}/held`, undefined, admin)).body.held).toHaveLength(1);
  });

  it('nothing the server wrote holds a held post\'s words, after reading, approving and rejecting them (rule 1)', async () => {
    expect(scan([dataDir], marker)).toEqual([]);
    // Mail that left (the approved copies, held notices, the rejection notice) carried only ciphertext too.
    expect(sink.messages.length).toBeGreaterThan(0);
    for (const m of sink.messages) expect(findMarker(m.raw, marker)).toBeNull();
  });
});

async function sendHeldTo(list: string): Promise<number> {
  const before = new Set((await api<{ held: Array<{ id: number }> }>('GET', `/v1/admin/lists/${list}/held`, undefined, admin)).body.held.map((h) => h.id));
  await send(server.smtpPort, alice.address, list, await compose(alice, list, await listPublicKey(dataDir, list), 'elsewhere', 'elsewhere'));
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const now = (await api<{ held: Array<{ id: number }> }>('GET', `/v1/admin/lists/${list}/held`, undefined, admin)).body.held.find((h) => !before.has(h.id));
    if (now) return now.id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no held post on the other list');
}

/** The text of the signed MIME entity inside a decrypted post. */
async function textOf(entity: string): Promise<string> {
  return (await PostalMime.parse(entity)).text ?? '';
}
