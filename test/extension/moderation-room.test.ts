// The background's moderation room against a fake moderation API: it signs only
// a moderator log-in naming this list and this user, decrypts held posts with the
// key chosen for the list (the sender's key as the list gave it checks the
// signature), signs each decision with that key naming the server the log-in
// named, signs in again when the session ended, and refuses bad input.

import 'fake-indexeddb/auto';
import * as openpgp from 'openpgp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  composePost, generateKey, loginStatement, moderationLoginStatement, parseModerationStatement, toBase64, type ListInfo,
} from '../../shared/index.ts';
import { encryptedDataOf } from '../../server/moderation/access.ts';
import { ListServer, type Fetch } from '../../extension/background/server.ts';
import { PAGES, Service, type Sender } from '../../extension/background/service.ts';
import { RateLimiter, UnlockedSession } from '../../extension/background/session.ts';
import { KeyStore } from '../../extension/background/store.ts';
import type { Answer, RequestType, Requests } from '../../extension/messages.ts';
import { makeKey, type TestKey } from '../support/keys.ts';
import { MemoryArea } from './fakes.ts';

const ID = 'abcdefghijklmnopabcdefghijklmnop';
const BASE = `chrome-extension://${ID}/`;
const LIST = 'board@lists.example.org';
const SERVER = 'https://lists.example.org';
const NAMED = 'https://lists.example.org/'; // the server's own name in its statements
const TOKEN = 'S'.repeat(43);
const CHALLENGE = 'C'.repeat(43);
const page: Sender = { id: ID, url: `${BASE}extension/pages/moderation/index.html`, frameId: 0, tab: { id: 1, url: `${BASE}extension/pages/moderation/index.html` } };
const stores: KeyStore[] = [];
let listKey: TestKey, alice: TestKey;
let n = 0;

beforeAll(async () => {
  [listKey, alice] = await Promise.all([makeKey(LIST, 'list'), makeKey('alice@example.org')]);
  expect(PAGES.top).toContain('extension/pages/moderation/index.html');
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

interface Call { method: string; path: string; body: unknown; auth: string | undefined }

/** A profile with Bob's key and the list pinned, talking to a fake moderation API. */
async function bobModerates(opts: { statement?: (address: string) => string; unauthorizedOnce?: boolean } = {}) {
  const store = await KeyStore.open(`mod-${++n}`);
  stores.push(store);
  const g = await generateKey({ kind: 'subscriber', address: 'bob@example.org', name: 'Bob', passphrase: 'bob passphrase' });
  const bobPublic = await openpgp.readKey({ armoredKey: g.publicKeyArmored }) as openpgp.PublicKey;
  // Alice's held post as the server hands it to Bob: her encrypted packet, a PKESK to Bob.
  const post = await composePost({ message: { subject: 'Please hold', from: { address: alice.address }, to: [{ address: LIST }], text: 'held words' }, senderKey: alice.privateKey, listKey: bobPublic });
  const bytes = (await openpgp.unarmor(post.armored)).data as Uint8Array;
  const body = encryptedDataOf(bytes)!;
  const wrappedKey = bytes.subarray(0, bytes.length - body.length);
  const meta = { id: 5, sender: alice.address, size: bytes.length, reason: 'moderated', receivedAt: new Date().toISOString() };
  const calls: Call[] = [];
  let unauthorizedOnce = opts.unauthorizedOnce ?? false;
  const listInfo: ListInfo = {
    address: LIST, name: 'Board', description: null,
    policy: { posting: 'moderated', signatureRequired: true, maxBytes: 1_000_000, subscription: 'open' },
    listKey: { fingerprint: listKey.fingerprint, armored: listKey.publicArmored }, apiBase: SERVER,
  };
  const fetchFn: Fetch = async (url, init) => {
    const path = new URL(url).pathname;
    const auth = (init?.headers as Record<string, string> | undefined)?.authorization;
    calls.push({ method: init?.method ?? 'GET', path: path.split('/').slice(4).join('/'), body: init?.body ? JSON.parse(String(init.body)) : undefined, auth });
    if (path === `/v1/lists/${encodeURIComponent(LIST)}`) return Response.json(listInfo);
    if (path.endsWith('/moderation/auth/challenge')) {
      const address = (JSON.parse(String(init!.body)) as { address: string }).address;
      const statement = opts.statement?.(address) ?? moderationLoginStatement({ server: NAMED, list: LIST, address, challengeId: CHALLENGE, expiresAt: '2030-01-01T00:05:00Z' });
      return Response.json({ challengeId: CHALLENGE, statement, expiresAt: '2030-01-01T00:05:00Z' });
    }
    if (path.endsWith('/moderation/auth/login')) return Response.json({ token: TOKEN, expiresAt: '2999-01-01T00:00:00Z', address: 'bob@example.org', fingerprint: bobPublic.getFingerprint().toUpperCase() });
    if (auth !== `Bearer ${TOKEN}`) return Response.json({ error: 'UNAUTHORIZED', message: 'Sign in.' }, { status: 401 });
    if (unauthorizedOnce) {
      unauthorizedOnce = false;
      return Response.json({ error: 'UNAUTHORIZED', message: 'Your moderator session has ended.' }, { status: 401 });
    }
    if (path.endsWith('/moderation/held')) return Response.json({ held: [meta], more: false });
    if (path.endsWith('/moderation/held/messages')) {
      return Response.json({ messages: [{ meta, wrappedKey: toBase64(wrappedKey), body: toBase64(body), senderKey: { address: alice.address, fingerprint: alice.fingerprint, publicKey: alice.publicArmored } }] });
    }
    const decision = /\/moderation\/held\/(\d+)\/decision$/.exec(path);
    if (decision) {
      const f = parseModerationStatement((JSON.parse(String(init!.body)) as { statement: string }).statement, 'moderate')!;
      return Response.json({ held: Number(decision[1]), action: f.action, result: f.action === 'approve' ? 'accepted' : 'refused', code: f.action === 'approve' ? null : 'REJECTED_BY_MODERATOR' });
    }
    return Response.json({ error: 'NOT_FOUND', message: 'No such thing.' }, { status: 404 });
  };
  let ids = 0;
  const service = new Service({
    store, session: new UnlockedSession(new MemoryArea(), Date.now), rate: new RateLimiter(120, Date.now),
    server: new ListServer(fetchFn), extensionId: ID, extensionBase: BASE,
    hasHostAccess: async () => false, pushToFrame: async () => true, openTab: async () => {}, fetch: async () => new Response(''),
    testMarks: false, sitesChanged: async () => {}, lockChanged: () => {}, randomId: () => `${'0'.repeat(31)}${++ids}`,
  });
  const ask = async <K extends RequestType>(type: K, payload: Requests[K]['req'], from: Sender = page) => (await service.handle({ letterlock: 1, type, payload }, from)) as Answer<Requests[K]['res']>;
  const ok = async <K extends RequestType>(type: K, payload: Requests[K]['req']) => {
    const a = await ask(type, payload);
    if (!a.ok) throw new Error(`${a.error.code}: ${a.error.message}`);
    return a.value;
  };
  await ok('key.import', { armored: g.privateKeyArmored, passphrase: 'bob passphrase' });
  await ok('list.lookup', { address: LIST, server: SERVER });
  await ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint });
  return { ask, ok, calls, bobPublic };
}

describe('moderation room', () => {
  it('signs in, decrypts held posts with the signature checked, and signs each decision with the list\'s key', async () => {
    const { ok, calls, bobPublic } = await bobModerates();
    expect(await ok('moderation.lists', {})).toEqual({ lists: [] });
    expect(await ok('moderation.login', { list: LIST })).toMatchObject({ address: 'bob@example.org' });
    expect(await ok('moderation.lists', {})).toEqual({ lists: [LIST] });
    const held = await ok('moderation.held', { list: LIST });
    expect(held.held).toHaveLength(1);
    expect(held.held[0]).toMatchObject({ id: 5, read: { subject: 'Please hold', text: 'held words', signature: { status: 'verified', address: alice.address } }, error: null });

    for (const action of ['approve', 'reject'] as const) {
      expect(await ok('moderation.decide', { list: LIST, id: 5, action })).toMatchObject({ id: 5, action });
    }
    const decisions = calls.filter((c) => c.path.endsWith('/decision'));
    expect(decisions).toHaveLength(2);
    const nonces = new Set<string>();
    for (const [i, c] of decisions.entries()) {
      expect(c.auth).toBe(`Bearer ${TOKEN}`);
      const { statement, signature } = c.body as { statement: string; signature: string };
      const f = parseModerationStatement(statement, 'moderate')!;
      // Names what the log-in named, this list, this moderator, this post and this action.
      expect(f).toMatchObject({ server: NAMED, list: LIST, address: 'bob@example.org', held: '5', action: ['approve', 'reject'][i] });
      expect(Math.abs(Date.parse(f.date!) - Date.now())).toBeLessThan(60_000);
      nonces.add(f.nonce!);
      const v = await openpgp.verify({ message: await openpgp.createMessage({ text: statement }), signature: await openpgp.readSignature({ armoredSignature: signature }), verificationKeys: bobPublic });
      await expect(v.signatures[0]!.verified).resolves.toBe(true);
    }
    expect(nonces.size).toBe(2);
  });

  it('signs in again once when the server says the session ended', async () => {
    const { ok, calls } = await bobModerates({ unauthorizedOnce: true });
    await ok('moderation.login', { list: LIST });
    expect((await ok('moderation.held', { list: LIST })).held).toHaveLength(1);
    expect(calls.filter((c) => c.path.endsWith('auth/login'))).toHaveLength(2);
  });

  it('refuses to sign a log-in statement for another list or address, or one of another kind', async () => {
    const wrong = [
      (a: string) => moderationLoginStatement({ server: NAMED, list: 'other@lists.example.org', address: a, challengeId: CHALLENGE, expiresAt: 'x' }),
      () => moderationLoginStatement({ server: NAMED, list: LIST, address: 'eve@example.org', challengeId: CHALLENGE, expiresAt: 'x' }),
      (a: string) => loginStatement({ server: NAMED, list: LIST, address: a, challengeId: CHALLENGE, expiresAt: 'x' }),
    ];
    for (const statement of wrong) {
      const { ask, calls } = await bobModerates({ statement });
      expect(await ask('moderation.login', { list: LIST })).toMatchObject({ ok: false, error: { code: 'SERVER_BAD_ANSWER' } });
      expect(calls.some((c) => c.path.endsWith('auth/login'))).toBe(false);
    }
  });

  it('refuses bad input and unknown lists, and only extension pages may ask', async () => {
    const { ask } = await bobModerates();
    expect(await ask('moderation.decide', { list: LIST, id: 0, action: 'approve' })).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(await ask('moderation.decide', { list: LIST, id: 5, action: 'delete' as never })).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(await ask('moderation.held', { list: 'nope@lists.example.org' })).toMatchObject({ ok: false, error: { code: 'LIST_UNKNOWN' } });
    // A web page's content script, and our reader frame inside a page, may not.
    const site = 'https://mail.example.org/inbox';
    expect(await ask('moderation.held', { list: LIST }, { id: ID, url: site, frameId: 0, tab: { id: 7, url: site } })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await ask('moderation.decide', { list: LIST, id: 5, action: 'approve' }, { id: ID, url: `${BASE}${PAGES.reader}#x`, frameId: 3, tab: { id: 7, url: site } })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});
