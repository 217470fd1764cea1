// The background's API, run in Node with its real parts: the key store on
// fake-indexeddb, the session over a fake session storage, and the list server
// client over a fake fetch. Senders are shaped like the browser's MessageSender.

import 'fake-indexeddb/auto';
import { spawnSync } from 'node:child_process';
import * as openpgp from 'openpgp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { composePost, generateKey, KeyRecipient, loginStatement, openPost, readPrivateKeyForStorage, seal, toBase64, wrapMany, type ListInfo } from '../../shared/index.ts';
import { ListServer, normalizeServer, type Fetch } from '../../extension/background/server.ts';
import { PAGES, Service, type Sender } from '../../extension/background/service.ts';
import { RateLimiter, UnlockedSession } from '../../extension/background/session.ts';
import { KeyStore } from '../../extension/background/store.ts';
import type { Answer, InsertArmored, RequestType, Requests, ToContent } from '../../extension/messages.ts';
import { makeKey, type TestKey } from '../support/keys.ts';
import { Gpg } from '../support/gpg.ts';
import { MemoryArea } from './fakes.ts';

const ID = 'abcdefghijklmnopabcdefghijklmnop';
const BASE = `chrome-extension://${ID}/`;
const SITE = 'https://mail.example.org';
const LIST = 'club@lists.example.org';
const SERVER = 'https://lists.example.org';

// A 1x1 PNG.
const PNG_BYTES = Uint8Array.from(atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='), (c) => c.charCodeAt(0));

const senders = {
  options: { id: ID, url: `${BASE}${PAGES.top[0]}`, frameId: 0, tab: { id: 1, url: `${BASE}${PAGES.top[0]}` } },
  popup: { id: ID, url: `${BASE}${PAGES.top[1]}` },
  content: (tab = 7) => ({ id: ID, url: `${SITE}/inbox`, frameId: 0, tab: { id: tab, url: `${SITE}/inbox` } }),
  reader: (tab = 7, site = SITE) => ({ id: ID, url: `${BASE}${PAGES.reader}#x`, frameId: 3, tab: { id: tab, url: `${site}/inbox` } }),
  composer: (tab = 7) => ({ id: ID, url: `${BASE}${PAGES.composer}#x`, frameId: 4, tab: { id: tab, url: `${SITE}/inbox` } }),
} satisfies Record<string, Sender | ((...a: never[]) => Sender)>;

let listKey: TestKey, alice: TestKey, stranger: TestKey;
let dbCounter = 0;

beforeAll(async () => {
  [listKey, alice, stranger] = await Promise.all([makeKey(LIST, 'list'), makeKey('alice@example.org'), makeKey('eve@example.org')]);
});

interface World {
  service: Service;
  store: KeyStore;
  area: MemoryArea;
  pushed: InsertArmored[];
  /** What the content script answers to a check-frame: was the frame in plain sight. */
  visible: boolean;
  checks: ToContent[];
  opened: string[];
  fetched: string[];
  frameKeys: Map<string, string>;
  confirmed: string[];
  clock: { now: number };
  listInfo: ListInfo;
  ask<K extends RequestType>(type: K, payload: Requests[K]['req'], sender: Sender): Promise<Answer<Requests[K]['res']>>;
  ok<K extends RequestType>(type: K, payload: Requests[K]['req'], sender: Sender): Promise<Requests[K]['res']>;
}

const worlds: World[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.store.close();
});

type Route = (path: string, init: RequestInit | undefined) => Response | null;

async function world(opsPerMinute = 120, extra: Route = () => null): Promise<World> {
  const store = await KeyStore.open(`test-${++dbCounter}`);
  const area = new MemoryArea();
  // Real time to start with (keys are made now; the key ring reads this clock too), moved by tests.
  const clock = { now: Date.now() };
  const pushed: InsertArmored[] = [];
  const confirmed: string[] = [];
  const listInfo: ListInfo = {
    address: LIST, name: 'Club', description: null,
    policy: { posting: 'members', signatureRequired: true, maxBytes: 1_000_000, subscription: 'open' },
    listKey: { fingerprint: listKey.fingerprint, armored: listKey.publicArmored }, apiBase: SERVER,
  };
  const fetchFn: Fetch = async (url, init) => {
    const path = new URL(url).pathname;
    const answer = extra(path, init);
    if (answer) return answer;
    if (path === `/v1/lists/${encodeURIComponent(LIST)}` && (init?.method ?? 'GET') === 'GET') return Response.json(listInfo);
    if (path.endsWith('/subscriptions/confirm') && init?.method === 'POST') {
      confirmed.push((JSON.parse(String(init.body)) as { token: string }).token);
      return Response.json({ status: 'member', address: 'bob@example.org', fingerprint: 'F'.repeat(40) });
    }
    if (path.endsWith('/subscriptions') && init?.method === 'POST') return Response.json({ status: 'confirmation-sent', expiresAt: new Date().toISOString() }, { status: 202 });
    return Response.json({ error: 'NOT_FOUND', message: 'No such thing.' }, { status: 404 });
  };
  let n = 0;
  const service = new Service({
    store, session: new UnlockedSession(area, () => clock.now), rate: new RateLimiter(opsPerMinute, () => clock.now),
    server: new ListServer(fetchFn), extensionId: ID, extensionBase: BASE,
    hasHostAccess: async (site) => site === SITE,
    pushToFrame: async (_tab, _frame, m) => {
      if (m.type === 'insert-armored') pushed.push(m);
      else w.checks.push(m);
      return m.type === 'check-frame' ? { visible: w.visible } : true;
    },
    openTab: async (url) => void w.opened.push(url),
    fetch: async (url) => {
      w.fetched.push(url);
      return url.endsWith('.png') ? new Response(PNG_BYTES) : new Response('<html>', { headers: { 'content-type': 'image/png' } });
    },
    testMarks: false,
    sitesChanged: async () => {}, lockChanged: () => {}, randomId: () => `id${++n}`, now: () => clock.now,
  });
  const w: World = {
    service, store, area, pushed, confirmed, clock, listInfo, visible: true, checks: [], opened: [], fetched: [], frameKeys: new Map(),
    ask: async (type, payload, sender) => {
      // The reader frame's first request carries the key its content script handed it; tests
      // that do not say otherwise open as the frame would after a click.
      const p = payload as Record<string, unknown>;
      const sent = type === 'reader.open' && !('click' in p) ? { ...p, frameKey: w.frameKeys.get(String(p.blockId)), click: true } : payload;
      const a = (await service.handle({ letterlock: 1, type, payload: sent }, sender)) as Answer<never>;
      if (type === 'content.stash' && a.ok) w.frameKeys.set((a.value as { blockId: string }).blockId, (a.value as { frameKey: string }).frameKey);
      return a as never;
    },
    ok: async (type, payload, sender) => {
      const a = await w.ask(type, payload, sender);
      if (!a.ok) throw new Error(`${a.error.code}: ${a.error.message}`);
      return a.value;
    },
  };
  worlds.push(w);
  return w;
}

/** A world with Bob's key imported (fast iterated S2K), unlocked, and the site allowed. */
async function bobWorld(opsPerMinute?: number, extra?: Route) {
  const w = await world(opsPerMinute, extra);
  const g = await generateKey({ kind: 'subscriber', address: 'bob@example.org', name: 'Bob', passphrase: 'bob passphrase' });
  await w.ok('key.import', { armored: g.privateKeyArmored, passphrase: 'bob passphrase' }, senders.options);
  await w.ok('sites.set', { sites: [SITE] }, senders.options);
  const bobPublic = await openpgp.readKey({ armoredKey: g.publicKeyArmored });
  return { w, g, bobPublic };
}

async function postTo(recipient: openpgp.Key, from: TestKey, text: string): Promise<string> {
  const post = await composePost({ message: { subject: 'Hi', from: { address: from.address }, to: [{ address: LIST }], text }, senderKey: from.privateKey, listKey: recipient as openpgp.PublicKey });
  return post.armored;
}

describe('who may ask what (sender checks)', () => {
  it('derives the caller from the sender, never from the message', async () => {
    const { w } = await bobWorld();
    expect(await w.service.callerOf(senders.options)).toBe('page');
    expect(await w.service.callerOf(senders.popup)).toBe('page');
    expect(await w.service.callerOf(senders.content())).toBe('content');
    expect(await w.service.callerOf(senders.reader())).toBe('reader');
    expect(await w.service.callerOf(senders.composer())).toBe('composer');
    // Our reader framed on a site the user did not allow, another extension, an
    // options page framed inside a web page, a content script on another site.
    expect(await w.service.callerOf(senders.reader(7, 'https://evil.example'))).toBeNull();
    expect(await w.service.callerOf({ ...senders.options, id: 'other' })).toBeNull();
    expect(await w.service.callerOf({ id: ID, url: `${BASE}${PAGES.top[0]}`, frameId: 2, tab: { id: 7, url: `${SITE}/` } })).toBeNull();
    expect(await w.service.callerOf({ id: ID, url: 'https://evil.example/', tab: { id: 9, url: 'https://evil.example/' } })).toBeNull();
    expect(await w.service.callerOf({ id: ID, url: `${SITE}/` })).toBeNull(); // no tab: not a content script
  });

  it('refuses requests outside a caller\'s allowance, and junk, with words', async () => {
    const { w } = await bobWorld();
    expect(await w.ask('key.export', {}, senders.content())).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('key.export', {}, senders.reader())).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('reader.open', { blockId: 'id1' }, senders.content())).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.service.handle({ type: 'state.get' }, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(await w.service.handle({ letterlock: 1, type: 'toString', payload: {} }, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(await w.service.handle(null, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
  });

  it('the rooms allow each request to exactly the callers the bus always allowed', async () => {
    const { w } = await bobWorld();
    const page = ['page'];
    expect(w.service.allowed).toEqual({
      'state.get': ['page', 'reader', 'composer'],
      'key.create': page, 'key.import': page, 'key.export': page, 'key.exportGnupg': page, 'key.renew': page, 'key.default': page, 'key.remove': page, 'key.unlock': page, 'key.lock': page,
      'settings.set': page, 'sites.set': page,
      'lists.get': page, 'list.lookup': page, 'list.pin': page, 'list.subscribe': page, 'list.remove': page, 'list.key': page,
      'content.stash': ['content'], 'content.compose': ['content'],
      'list.auto': page, 'attachment.get': page,
      'reader.open': ['reader'], 'reader.confirm': ['reader'], 'reader.visible': ['reader'], 'reader.images': ['reader'], 'reader.attachment': ['reader'],
      'frame.state': ['reader', 'composer'],
      'composer.lists': ['composer'], 'composer.send': ['composer'],
      'reader.reply': ['reader'], 'composer.start': ['composer'], 'composer.draft.save': ['composer'], 'composer.draft.delete': ['composer'],
      'archive.login': page, 'archive.threads': page, 'archive.open': page, 'archive.thread': page, 'archive.reply': page,
      'moderation.lists': page, 'moderation.login': page, 'moderation.held': page, 'moderation.decide': page,
    });
  });
});

describe('keys', () => {
  it('creates an Argon2-protected key, stores only the protected form, and hands out no secret', async () => {
    const w = await world();
    const created = await w.ok('key.create', { name: 'Bob', address: 'Bob@Example.org', passphrase: 'a long passphrase' }, senders.options);
    const state = created.state;
    expect(state).toMatchObject({ hasKey: true, unlocked: true, key: { address: 'bob@example.org', name: 'Bob' } });
    expect(JSON.stringify(created)).not.toContain('PRIVATE KEY');
    // The revocation certificate is made with the key and handed out with it, once.
    const cert = await openpgp.readSignature({ armoredSignature: created.revocationCertificate.replace('PUBLIC KEY BLOCK', 'SIGNATURE').replace('PUBLIC KEY BLOCK', 'SIGNATURE') });
    expect(cert.packets[0]!.signatureType).toBe(openpgp.enums.signature.keyRevocation);
    expect(created.fingerprint).toBe(state.key!.fingerprint);
    const stored = (await w.store.getKey())!;
    const { key } = await readPrivateKeyForStorage(stored.privateArmored); // refuses unprotected keys
    expect((key.keyPacket as unknown as { s2k: { type: string } }).s2k.type).toBe('argon2');
    // Only the session area (browser memory) holds the unlocked key.
    expect(JSON.stringify([...w.area.data.values()])).toContain('PRIVATE KEY');
    const backup = await w.ok('key.export', {}, senders.options);
    expect(backup.armored).toBe(stored.privateArmored);
    // Importing the same key again changes nothing.
    expect((await w.ask('key.import', { armored: stored.privateArmored, passphrase: 'a long passphrase' }, senders.options))).toMatchObject({ ok: false, error: { code: 'KEY_EXISTS' } });
  });

  it('exports the key for GnuPG 2.2 under the same passphrase: gpg imports it and decrypts with it; the stored backup it skips', async () => {
    const w = await world();
    const pass = 'a long passphrase';
    const created = await w.ok('key.create', { name: 'Bob', address: 'bob@example.org', passphrase: pass }, senders.options);
    // Renewed (no lists to tell): still Argon2 in the store, and still no SEIPDv2 asked of senders.
    await w.ok('key.renew', { fingerprint: created.fingerprint, passphrase: pass, expiresInDays: 730 }, senders.options);
    const renewed = await readPrivateKeyForStorage((await w.store.getKey(created.fingerprint))!.privateArmored);
    expect((renewed.key.keyPacket as unknown as { s2k: { type: string } }).s2k.type).toBe('argon2');
    expect((await renewed.key.toPublic().getPrimaryUser()).selfCertification.features).toEqual([1]);
    // Only extension pages may ask, and only with the passphrase that opens the key.
    expect(await w.ask('key.exportGnupg', { passphrase: pass }, senders.content())).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('key.exportGnupg', { passphrase: pass }, senders.reader())).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('key.exportGnupg', { passphrase: 'not the passphrase' }, senders.options)).toMatchObject({ ok: false, error: { code: 'KEY_PASSPHRASE_WRONG' } });
    expect(await w.ask('key.exportGnupg', {} as Requests['key.exportGnupg']['req'], senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    const { armored } = await w.ok('key.exportGnupg', { fingerprint: created.fingerprint, passphrase: pass }, senders.options);
    // Still protected (never a bare key), in the RFC 4880 form: iterated S2K with SHA-256, AES-256, SHA-1 checksum.
    const { key } = await readPrivateKeyForStorage(armored);
    for (const p of [key.keyPacket, ...key.subkeys.map((s) => s.keyPacket)] as unknown as { s2kUsage: number; symmetric: number; s2k: { type: string; algorithm: number } }[]) {
      expect(p).toMatchObject({ s2kUsage: 254, symmetric: openpgp.enums.symmetric.aes256, s2k: { type: 'iterated', algorithm: openpgp.enums.hash.sha256 } });
    }
    const gpg = new Gpg();
    try {
      // The stored (Argon2/AEAD) backup is what GnuPG 2.2 cannot use: it brings no secret key in.
      const stored = await w.ok('key.export', {}, senders.options);
      await gpg.run(['--import'], stored.armored, pass);
      const none = await gpg.run(['--list-secret-keys', '--with-colons']);
      expect(none.stdout.toString()).not.toContain(created.fingerprint);
      await gpg.mustRun(['--import'], armored, pass);
      const listed = await gpg.mustRun(['--list-secret-keys', '--with-colons']);
      expect(listed.stdout.toString()).toContain(created.fingerprint);
      // Encrypted to the imported key by gpg itself (SEIPDv1, as GnuPG 2.2 and Thunderbird send).
      const message = (await gpg.mustRun(['--armor', '--encrypt', '--recipient', created.fingerprint], 'for gpg only')).stdout;
      expect(message.toString()).toContain('BEGIN PGP MESSAGE');
      const out = await gpg.mustRun(['--decrypt'], message, pass);
      expect(out.stdout.toString()).toBe('for gpg only');
      // And from an RFC 9580 sender (openpgp.js 6, default settings): the key asks for no SEIPDv2, so gpg 2.2 reads it.
      const fromV6 = await openpgp.encrypt({ message: await openpgp.createMessage({ text: 'from openpgp.js' }), encryptionKeys: key.toPublic() });
      expect((await gpg.mustRun(['--decrypt'], fromV6, pass)).stdout.toString()).toBe('from openpgp.js');
      // A wrong passphrase does not open the imported key (a fresh agent: it forgets the right one).
      spawnSync('gpgconf', ['--homedir', gpg.home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
      const wrong = await gpg.run(['--decrypt'], message, 'not the passphrase');
      expect(wrong.code).not.toBe(0);
    } finally {
      gpg.cleanup();
    }
  });

  it('keeps several keys: one chosen per list before subscribing, one passphrase unlocks the keys it opens', async () => {
    const subscribed: { address: string; publicKey: string }[] = [];
    const { w, g } = await bobWorld(undefined, (path, init) => {
      if (path.endsWith('/subscriptions') && init?.method === 'POST') {
        subscribed.push(JSON.parse(String(init.body)) as { address: string; publicKey: string });
        return Response.json({ status: 'confirmation-sent', expiresAt: new Date().toISOString() }, { status: 202 });
      }
      return null;
    });
    const second = await w.ok('key.create', { name: 'Dave', address: 'dave@example.org', passphrase: 'bob passphrase', expiresInDays: 365 }, senders.options);
    expect(second.state.keys.map((k) => k.address)).toEqual(['bob@example.org', 'dave@example.org']);
    expect(Date.parse(second.state.keys[1]!.expires!) - Date.now()).toBeGreaterThan(364 * 86_400_000);
    const candidate = await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await w.ok('list.pin', { address: LIST, fingerprint: candidate.fingerprint }, senders.options);
    const lists = await w.ok('list.key', { address: LIST, fingerprint: second.fingerprint }, senders.options);
    expect(lists[0]!.keyFingerprint).toBe(second.fingerprint);
    expect(await w.ask('list.key', { address: LIST, fingerprint: 'F'.repeat(40) }, senders.options)).toMatchObject({ ok: false, error: { code: 'NO_KEY' } });
    await w.ok('list.subscribe', { address: LIST, delivery: 'inline' }, senders.options);
    expect(subscribed.map((x) => x.address)).toEqual(['dave@example.org']);
    expect((await openpgp.readKey({ armoredKey: subscribed[0]!.publicKey })).getFingerprint().toUpperCase()).toBe(second.fingerprint);
    // After subscribing the list's key is fixed.
    expect(await w.ask('list.key', { address: LIST, fingerprint: g.facts.fingerprint }, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    // Lock, then one passphrase opens both keys.
    await w.ok('key.lock', {}, senders.options);
    const unlocked = await w.ok('key.unlock', { passphrase: 'bob passphrase' }, senders.options);
    expect(unlocked.keys.map((k) => k.unlocked)).toEqual([true, true]);
    // Removing the default key leaves the other as the default.
    const after = await w.ok('key.remove', { fingerprint: g.facts.fingerprint }, senders.options);
    expect(after.keys.map((k) => k.address)).toEqual(['dave@example.org']);
    expect(after.unlocked).toBe(true);
  });

  it('renews a key under the same passphrase and re-publishes it to its lists by a request its registered key signed', async () => {
    const requests: { statement: string; signature: string; newPublicKey?: string }[] = [];
    const { w, bobPublic } = await bobWorld(undefined, (path, init) => {
      if (path.endsWith('/requests') && init?.method === 'POST') {
        requests.push(JSON.parse(String(init.body)) as { statement: string; signature: string; newPublicKey?: string });
        return Response.json({ status: 'key-changed' });
      }
      return null;
    });
    const fp = bobPublic.getFingerprint().toUpperCase();
    const candidate = await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await w.ok('list.pin', { address: LIST, fingerprint: candidate.fingerprint }, senders.options);
    const stored = (await w.store.getList(LIST))!;
    await w.store.putList({ ...stored, state: 'member' });
    expect(await w.ask('key.renew', { fingerprint: fp, passphrase: 'wrong', expiresInDays: 730 }, senders.options)).toMatchObject({ ok: false, error: { code: 'KEY_PASSPHRASE_WRONG' } });
    const r = await w.ok('key.renew', { fingerprint: fp, passphrase: 'bob passphrase', expiresInDays: 730 }, senders.options);
    expect(r.republished).toEqual([{ list: LIST, ok: true, message: null }]);
    const k = r.state.keys[0]!;
    expect(k.fingerprint).toBe(fp);
    expect(Math.abs(Date.parse(k.expires!) - (Date.now() + 730 * 86_400_000))).toBeLessThan(3_600_000);
    // Still protected by the same passphrase.
    const { key } = await readPrivateKeyForStorage((await w.store.getKey(fp))!.privateArmored);
    await openpgp.decryptKey({ privateKey: key, passphrase: 'bob passphrase' });
    // The request: a key change for this list and address, naming the same fingerprint, signed by the old key.
    expect(requests).toHaveLength(1);
    expect(requests[0]!.statement).toContain(`action: key-change\n`);
    expect(requests[0]!.statement).toContain(`value: ${fp}\n`);
    const verified = await openpgp.verify({ message: await openpgp.createMessage({ text: requests[0]!.statement }), signature: await openpgp.readSignature({ armoredSignature: requests[0]!.signature }), verificationKeys: bobPublic, expectSigned: true });
    expect(verified.data).toBe(requests[0]!.statement);
    const renewedPublic = await openpgp.readKey({ armoredKey: requests[0]!.newPublicKey! });
    expect((await renewedPublic.getExpirationTime() as Date).getTime()).toBe(Date.parse(k.expires!));
    // No SEIPDv2 advertised to senders after renewal either (GnuPG 2.2 readers).
    expect((await renewedPublic.getPrimaryUser()).selfCertification.features).toEqual([1]);
  });

  it('refuses an unprotected key, a wrong passphrase, a short passphrase and a public key', async () => {
    const w = await world();
    const bare = await openpgp.generateKey({ userIDs: [{ email: 'x@example.org' }], format: 'armored' });
    expect(await w.ask('key.import', { armored: bare.privateKey, passphrase: '' }, senders.options)).toMatchObject({ ok: false, error: { code: 'KEY_UNPROTECTED' } });
    expect(await w.ask('key.import', { armored: alice.privateArmored, passphrase: 'wrong' }, senders.options)).toMatchObject({ ok: false, error: { code: 'KEY_PASSPHRASE_WRONG' } });
    expect(await w.ask('key.import', { armored: alice.publicArmored, passphrase: 'x' }, senders.options)).toMatchObject({ ok: false, error: { code: 'KEY_NOT_PRIVATE' } });
    expect(await w.ask('key.create', { name: '', address: 'x@example.org', passphrase: 'short' }, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect((await w.ok('state.get', {}, senders.options)).hasKey).toBe(false);
  });
});

describe('reading', () => {
  it('decrypts a block for the reader frame of the tab that found it, and says the signature was not checked without the sender key', async () => {
    const { w, bobPublic } = await bobWorld();
    const armored = await postTo(bobPublic, alice, 'secret words');
    const { blockId } = await w.ok('content.stash', { armored }, senders.content(7));
    const read = await w.ok('reader.open', { blockId }, senders.reader(7));
    expect(read.text).toBe('secret words');
    expect(read.signature).toEqual({ status: 'unchecked', reason: 'Signature not checked: sender key unavailable.' });
    expect(await w.ask('reader.open', { blockId }, senders.reader(8))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('reader.open', { blockId: 'nope' }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'UNKNOWN_BLOCK' } });
  });

  it('verifies a signature by a key the user has (their own sent copy)', async () => {
    const { w, g } = await bobWorld();
    const bobUnlocked = await openpgp.decryptKey({ privateKey: await openpgp.readPrivateKey({ armoredKey: g.privateKeyArmored }), passphrase: 'bob passphrase' });
    const armored = await composePost({ message: { subject: 'Mine', from: { address: 'bob@example.org' }, to: [{ address: LIST }], text: 'sent copy' }, senderKey: bobUnlocked, listKey: listKey.publicKey }).then((p) => p.armored);
    const { blockId } = await w.ok('content.stash', { armored }, senders.content());
    const read = await w.ok('reader.open', { blockId }, senders.reader());
    expect(read.signature).toEqual({ status: 'verified', fingerprint: g.facts.fingerprint, address: 'bob@example.org' });
  });

  it('says why it cannot read: locked, not for this key, damaged, too large', async () => {
    const { w, bobPublic } = await bobWorld();
    const stash = async (armored: string) => (await w.ok('content.stash', { armored }, senders.content())).blockId;
    const forBob = await stash(await postTo(bobPublic, alice, 'x'));
    const forStranger = await stash(await postTo(stranger.publicKey, alice, 'x'));
    // Truncated in transit: the body lines after the session keys are gone.
    const lines = (await postTo(bobPublic, alice, 'x')).trimEnd().split('\n');
    lines.splice(lines.length - 4, 3);
    const damaged = await stash(lines.join('\n'));
    expect(await w.ask('reader.open', { blockId: forStranger }, senders.reader())).toMatchObject({ ok: false, error: { code: 'NO_KEY_FOR_MESSAGE' } });
    expect(await w.ask('reader.open', { blockId: damaged }, senders.reader())).toMatchObject({ ok: false, error: { code: 'DAMAGED' } });
    expect(await w.ask('content.stash', { armored: 'x'.repeat(5 * 1024 * 1024) }, senders.content())).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    await w.ok('key.lock', {}, senders.options);
    expect(await w.ask('reader.open', { blockId: forBob }, senders.reader())).toMatchObject({ ok: false, error: { code: 'LOCKED', message: expect.stringContaining('Unlock') } });
  });

  it('limits crypto operations per minute', async () => {
    const { w, bobPublic } = await bobWorld(10);
    const { blockId } = await w.ok('content.stash', { armored: await postTo(bobPublic, alice, 'x') }, senders.content());
    for (let i = 0; i < 10; i++) await w.ok('reader.open', { blockId }, senders.reader());
    expect(await w.ask('reader.open', { blockId }, senders.reader())).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    w.clock.now += 61_000;
    await w.ok('reader.open', { blockId }, senders.reader());
  });
});

describe('page isolation (issue 12)', () => {
  const frame = (frameId: number, documentId?: string) => ({ ...senders.reader(7), frameId, ...(documentId ? { documentId } : {}) });

  it('a block opens only for the frame that brought its frame key first; a copy of the frame URL gets nothing', async () => {
    const { w, bobPublic } = await bobWorld();
    const { blockId, frameKey } = await w.ok('content.stash', { armored: await postTo(bobPublic, alice, 'secret') }, senders.content(7));
    expect(frameKey).toMatch(/^id\d+$/);
    // A frame the page made from the URL has the block id but not the key.
    expect(await w.ask('reader.open', { blockId, click: true }, frame(9, 'doc-9'))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('reader.open', { blockId, frameKey: 'guess', click: true }, frame(9, 'doc-9'))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect((await w.ok('reader.open', { blockId, frameKey, click: true }, frame(3, 'doc-3'))).text).toBe('secret');
    // Used once: the same key from another frame, or the same frame after it navigated, gets nothing.
    expect(await w.ask('reader.open', { blockId, frameKey, click: true }, frame(9, 'doc-9'))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('reader.open', { blockId, click: true }, frame(3, 'doc-3b'))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('reader.confirm', { blockId }, frame(9, 'doc-9'))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect((await w.ok('reader.open', { blockId, click: true }, frame(3, 'doc-3'))).text).toBe('secret');
  });

  it('decrypts only on a click unless the message\'s list is set to decrypt automatically; unasked, the key is not even used', async () => {
    const { w, bobPublic } = await bobWorld(10);
    const armored = await postTo(bobPublic, alice, 'auto?');
    const open = async (click: boolean) => {
      const { blockId, frameKey } = await w.ok('content.stash', { armored }, senders.content(7));
      return w.ask('reader.open', { blockId, frameKey, click }, senders.reader(7));
    };
    for (let i = 0; i < 12; i++) expect(await open(false)).toMatchObject({ ok: false, error: { code: 'CLICK_TO_DECRYPT' } });
    expect(await open(true)).toMatchObject({ ok: true }); // the 12 unasked opens used no operation of the 10 a minute
    await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await w.ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint }, senders.options);
    expect(await w.ask('list.auto', { address: LIST, auto: true }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect((await w.ok('list.auto', { address: LIST, auto: true }, senders.options))[0]!.autoDecrypt).toBe(true);
    expect(await open(false)).toMatchObject({ ok: true, value: { text: 'auto?', list: LIST } });
    // Mail of no auto list still waits for the click.
    const other = await composePost({ message: { subject: 'x', from: { address: alice.address }, to: [{ address: 'other@lists.example.org' }], text: 'other' }, senderKey: alice.privateKey, listKey: bobPublic as openpgp.PublicKey });
    const { blockId, frameKey } = await w.ok('content.stash', { armored: other.armored }, senders.content(7));
    expect(await w.ask('reader.open', { blockId, frameKey, click: false }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'CLICK_TO_DECRYPT' } });
  });

  it('bounds what pages may stash: per tab (refused) and in total (oldest dropped)', async () => {
    const { w } = await bobWorld();
    const block = (kb: number) => `-----BEGIN PGP MESSAGE-----\n\n${'A'.repeat(kb * 1024)}\n-----END PGP MESSAGE-----\n`;
    for (let i = 0; i < 7; i++) await w.ok('content.stash', { armored: block(1000) }, senders.content(7));
    expect(await w.ask('content.stash', { armored: block(1500) }, senders.content(7))).toMatchObject({ ok: false, error: { code: 'TOO_MANY_BLOCKS' } });
    for (let i = 0; i < 25; i++) await w.ok('content.stash', { armored: block(1) }, senders.content(8));
    expect(await w.ask('content.stash', { armored: block(1) }, senders.content(8))).toMatchObject({ ok: true });
    for (let i = 0; i < 6; i++) await w.ok('content.stash', { armored: block(1) }, senders.content(8));
    expect(await w.ask('content.stash', { armored: block(1) }, senders.content(8))).toMatchObject({ ok: false, error: { code: 'TOO_MANY_BLOCKS' } });
    // Three more tabs of 7 MB each: the total stays under 24 MB by dropping the oldest.
    for (const tab of [9, 10, 11]) for (let i = 0; i < 7; i++) await w.ok('content.stash', { armored: block(1000) }, senders.content(tab));
    const first = [...w.frameKeys.keys()][0]!;
    expect(await w.ask('reader.open', { blockId: first }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'UNKNOWN_BLOCK' } });
  });

  it('a webmail showing message after message in one tab is not refused: blocks it is done with make room', async () => {
    const { w, bobPublic } = await bobWorld(1000);
    const armored = await postTo(bobPublic, alice, 'one of many');
    await w.ok('settings.set', { timeoutMinutes: 60 }, senders.options);
    await w.ok('key.unlock', { passphrase: 'bob passphrase' }, senders.options);
    for (let i = 0; i < 40; i++) {
      const { blockId } = await w.ok('content.stash', { armored }, senders.content(7));
      await w.ok('reader.open', { blockId }, senders.reader(7));
      w.clock.now += 31_000; // the user reads each message for half a minute
    }
    // Opened just now: still held, so a burst past 32 is refused rather than pushing them out.
    for (let i = 0; i < 32; i++) {
      const { blockId } = await w.ok('content.stash', { armored }, senders.content(7));
      await w.ok('reader.open', { blockId }, senders.reader(7));
    }
    expect(await w.ask('content.stash', { armored }, senders.content(7))).toMatchObject({ ok: false, error: { code: 'TOO_MANY_BLOCKS' } });
  });

  it('asks the content script that placed the frame whether a click was in plain sight', async () => {
    const { w, bobPublic } = await bobWorld();
    const { blockId } = await w.ok('content.stash', { armored: await postTo(bobPublic, alice, 'x') }, senders.content(7));
    await w.ok('reader.open', { blockId }, senders.reader(7));
    expect(await w.ok('reader.visible', { blockId, click: { x: 10, y: 20, keyboard: false } }, senders.reader(7))).toEqual({ visible: true });
    expect(w.checks.at(-1)).toEqual({ letterlock: 1, type: 'check-frame', blockId, click: { x: 10, y: 20, keyboard: false } });
    w.visible = false;
    expect(await w.ok('reader.visible', { blockId, click: { x: 10, y: 20, keyboard: false } }, senders.reader(7))).toEqual({ visible: false });
    expect(await w.ask('reader.visible', { blockId, click: { x: 'a' } as never }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
  });

  it('loads remote images only as checked image bytes, and opens attachments once, in the extension\'s own page', async () => {
    const { w, bobPublic } = await bobWorld();
    const post = await composePost({
      message: { subject: 'files', from: { address: alice.address }, to: [{ address: LIST }], text: 'see attached', attachments: [{ filename: 'notes.txt', contentType: 'text/plain', content: new TextEncoder().encode('attached words') }] },
      senderKey: alice.privateKey, listKey: bobPublic as openpgp.PublicKey,
    });
    const { blockId } = await w.ok('content.stash', { armored: post.armored }, senders.content(7));
    const read = await w.ok('reader.open', { blockId }, senders.reader(7));
    expect(read.attachments).toEqual([{ filename: 'notes.txt', size: 14 }]);
    const imgs = await w.ok('reader.images', { blockId, urls: ['https://img.example/a.png', 'https://img.example/page.html', 'javascript:alert(1)'] }, senders.reader(7));
    expect(imgs.images[0]!.dataUrl).toMatch(/^data:image\/png;base64,iVBOR/);
    expect(imgs.images[1]!.dataUrl).toBeNull(); // says image/png, is not
    expect(imgs.images[2]!.dataUrl).toBeNull();
    expect(w.fetched).toEqual(['https://img.example/a.png', 'https://img.example/page.html']);
    await w.ok('reader.attachment', { blockId, index: 0 }, senders.reader(7));
    const token = new URL(w.opened[0]!).hash.slice(1);
    expect(w.opened[0]).toBe(`${BASE}extension/pages/attachment/index.html#${token}`);
    expect(await w.ask('attachment.get', { token }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    const file = await w.ok('attachment.get', { token }, senders.options);
    expect(file).toMatchObject({ filename: 'notes.txt', contentType: 'text/plain' });
    expect(new TextDecoder().decode(Uint8Array.from(atob(file.base64), (c) => c.charCodeAt(0)))).toBe('attached words');
    expect(await w.ask('attachment.get', { token }, senders.options)).toMatchObject({ ok: false, error: { code: 'ATTACHMENT_GONE' } });
  });

  it('refuses plain-http list servers except on this computer', async () => {
    const { w } = await bobWorld();
    expect(await w.ask('list.lookup', { address: LIST, server: 'http://lists.example.org' }, senders.options)).toMatchObject({ ok: false, error: { code: 'INSECURE_SERVER' } });
    expect(normalizeServer('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080');
    expect(normalizeServer('http://localhost:8080')).toBe('http://localhost:8080');
    expect(() => normalizeServer('http://127.0.0.1.evil.example')).toThrow(/https/);
    // A list pinned over http elsewhere before this rule is not used.
    await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await w.ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint }, senders.options);
    await w.store.putList({ ...(await w.store.getList(LIST))!, server: 'http://lists.example.org' });
    expect(await w.ask('list.subscribe', { address: LIST, delivery: 'inline' }, senders.options)).toMatchObject({ ok: false, error: { code: 'INSECURE_SERVER' } });
  });

  it('marks frame states only in test builds', async () => {
    const { w } = await bobWorld();
    expect(await w.ask('frame.state', { id: 'x', state: 'decrypted', signature: '', step: '' }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});

describe('lists', () => {
  it('shows the fingerprint, pins only the confirmed one, and warns (never switches) when the key changes', async () => {
    const { w } = await bobWorld();
    const candidate = await w.ok('list.lookup', { address: LIST, server: `${SERVER}/` }, senders.options);
    expect(candidate).toMatchObject({ fingerprint: listKey.fingerprint, pinnedFingerprint: null, server: SERVER });
    expect(await w.ask('list.pin', { address: LIST, fingerprint: stranger.fingerprint }, senders.options)).toMatchObject({ ok: false, error: { code: 'FINGERPRINT_MISMATCH' } });
    expect((await w.ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint }, senders.options))[0]).toMatchObject({ state: 'pinned', changedFingerprint: null });
    expect((await w.ok('list.subscribe', { address: LIST, delivery: 'inline' }, senders.options))[0]!.state).toBe('confirmation-sent');

    // The server now offers another key for the list.
    const other = await makeKey(LIST, 'list');
    w.listInfo.listKey = { fingerprint: other.fingerprint, armored: other.publicArmored };
    const again = await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    expect(again.pinnedFingerprint).toBe(listKey.fingerprint);
    const [row] = await w.ok('lists.get', {}, senders.options);
    expect(row).toMatchObject({ fingerprint: listKey.fingerprint, changedFingerprint: other.fingerprint });
    expect(await w.ask('list.subscribe', { address: LIST, delivery: 'inline' }, senders.options)).toMatchObject({ ok: false, error: { code: 'LIST_KEY_CHANGED' } });
  });

  it('refuses a server answer whose key does not match its fingerprint or address, and bad server addresses', async () => {
    const { w } = await bobWorld();
    w.listInfo.listKey = { fingerprint: listKey.fingerprint, armored: stranger.publicArmored };
    expect(await w.ask('list.lookup', { address: LIST, server: SERVER }, senders.options)).toMatchObject({ ok: false, error: { code: 'KEY_USERID_MISMATCH' } });
    expect(await w.ask('list.lookup', { address: LIST, server: 'ftp://x' }, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(await w.ask('list.lookup', { address: 'nobody@lists.example.org', server: SERVER }, senders.options)).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });
});

describe('confirming a subscription', () => {
  it('offers one-click confirmation only for a mail the pinned list key signed, and sends the token from the mail', async () => {
    const { w, bobPublic } = await bobWorld();
    await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await w.ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint }, senders.options);
    await w.ok('list.subscribe', { address: LIST, delivery: 'pgp-mime' }, senders.options);
    const token = 'T'.repeat(43);
    const mail = async (signer: TestKey) => (await composePost({
      message: { subject: 'Confirm', from: { address: LIST }, to: [{ address: 'bob@example.org' }], text: `Press the button.\n\nLetterlock-Confirm: ${token}\n` },
      senderKey: signer.privateKey, listKey: bobPublic as openpgp.PublicKey,
    })).armored;
    const forged = (await w.ok('content.stash', { armored: await mail(stranger) }, senders.content())).blockId;
    expect((await w.ok('reader.open', { blockId: forged }, senders.reader())).confirmable).toBe(false);
    expect(await w.ask('reader.confirm', { blockId: forged }, senders.reader())).toMatchObject({ ok: false, error: { code: 'NO_CONFIRMATION' } });
    const real = (await w.ok('content.stash', { armored: await mail(listKey) }, senders.content())).blockId;
    const view = await w.ok('reader.open', { blockId: real }, senders.reader());
    expect(view).toMatchObject({ confirmable: true, list: LIST, signature: { status: 'verified', address: LIST } });
    expect(await w.ok('reader.confirm', { blockId: real }, senders.reader())).toEqual({ status: 'member', list: LIST });
    expect(w.confirmed).toEqual([token]);
    expect((await w.ok('lists.get', {}, senders.options))[0]!.state).toBe('member');
  });
});

describe('writing', () => {
  it('composes only for a compose box its own tab opened, and pushes only armored text', async () => {
    const { w } = await bobWorld();
    await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await w.ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint }, senders.options);
    const { composeId } = await w.ok('content.compose', {}, senders.content(7));
    const send = { composeId, list: LIST, subject: 'S', text: 'plain words' };
    expect(await w.ask('composer.send', send, senders.composer(7))).toMatchObject({ ok: false, error: { code: 'LIST_NOT_PINNED' } });
    const stored = (await w.store.getList(LIST))!;
    await w.store.putList({ ...stored, state: 'member' });
    expect(await w.ask('composer.send', send, senders.composer(8))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('composer.send', { ...send, text: '  ' }, senders.composer(7))).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    await w.ok('composer.send', send, senders.composer(7));
    expect(w.pushed).toHaveLength(1);
    expect(w.pushed[0]!.armored).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    expect(w.pushed[0]!.armored).not.toContain('plain words');
  });
});

describe('archive', () => {
  const TOKEN = 'S'.repeat(43);
  const CHALLENGE = 'C'.repeat(43);

  /** A fake archive API: log-in by challenge, one thread, one record, Alice's member key. */
  async function archiveWorld(statementList = LIST, author: TestKey = alice) {
    const calls: string[] = [];
    let unauthorizedOnce = true;
    const post = await composePost({ message: { subject: 'Archived', from: { address: author.address }, to: [{ address: LIST }], text: 'from the archive' }, senderKey: author.privateKey, listKey: listKey.publicKey });
    const opened = await openPost(post.inline, { listKey: listKey.privateKey, memberKeys: [author.publicKey] });
    const sealed = await seal(opened.innerPackets);
    let record: { wrappedKey: string; body: string } | null = null;
    const { w, bobPublic } = await bobWorld(120, (path, init) => {
      const auth = (init?.headers as Record<string, string> | undefined)?.authorization;
      calls.push(`${init?.method ?? 'GET'} ${path.split('/').slice(4).join('/')}`);
      if (path.endsWith('/auth/challenge')) {
        const statement = loginStatement({ server: SERVER, list: statementList, address: 'bob@example.org', challengeId: CHALLENGE, expiresAt: '2030-01-01T00:05:00Z' });
        return Response.json({ challengeId: CHALLENGE, statement, expiresAt: '2030-01-01T00:05:00Z' });
      }
      if (path.endsWith('/auth/login')) return Response.json({ token: TOKEN, expiresAt: '2999-01-01T00:00:00Z', address: 'bob@example.org', fingerprint: 'F'.repeat(40) });
      if (!/\/(archive|members)\//.test(path)) return null;
      if (auth !== `Bearer ${TOKEN}`) return Response.json({ error: 'UNAUTHORIZED', message: 'Sign in.' }, { status: 401 });
      if (path.endsWith('/archive/threads')) {
        if (unauthorizedOnce) {
          unauthorizedOnce = false; // the session expired on the server: the client signs in again
          return Response.json({ error: 'UNAUTHORIZED', message: 'Sign in again.' }, { status: 401 });
        }
        return Response.json({ threads: [{ rootId: 1, lastDate: null, messages: [{ id: 1, messageId: null, inReplyTo: null, references: [], date: null, size: 10 }] }], nextCursor: null });
      }
      if (path.endsWith('/archive/thread')) return Response.json({ rootId: 1, lastDate: null, messages: [{ id: 1, messageId: '<r@x>', inReplyTo: null, references: [], date: null, size: 10 }, { id: 2, messageId: '<s@x>', inReplyTo: '<r@x>', references: ['<r@x>'], date: null, size: 10 }] });
      if (path.endsWith('/archive/messages')) return Response.json({ messages: [{ meta: { id: 1, messageId: null, inReplyTo: null, references: [], date: null, size: 10 }, ...record! }] });
      if (path.includes('/members/keys/')) return Response.json({ address: author.address, fingerprint: author.fingerprint, publicKey: author.publicArmored });
      return null;
    });
    const [pkesk] = await wrapMany(sealed.sessionKey, [await KeyRecipient.fromPublicKey(bobPublic as openpgp.PublicKey)]);
    record = { wrappedKey: toBase64(pkesk!), body: toBase64(sealed.body) };
    await w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await w.ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint }, senders.options);
    return { w, calls, post };
  }

  it('signs in by signing the challenge, signs in again when the session ends, and decrypts records with the member\'s signature checked', async () => {
    const { w, calls } = await archiveWorld();
    await w.ok('archive.login', { list: LIST }, senders.options);
    const page = await w.ok('archive.threads', { list: LIST, before: null }, senders.options);
    expect(page.threads[0]!.messages.map((m) => m.id)).toEqual([1]);
    expect(calls.filter((c) => c.endsWith('auth/login'))).toHaveLength(2);
    const [view] = await w.ok('archive.open', { list: LIST, ids: [1] }, senders.options);
    expect(view!.read).toMatchObject({ subject: 'Archived', text: 'from the archive', signature: { status: 'verified', address: alice.address, fingerprint: alice.fingerprint } });
    expect(await w.ask('archive.open', { list: LIST, ids: [] }, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(await w.ask('archive.open', { list: LIST, ids: Array.from({ length: 51 }, (_, i) => i + 1) }, senders.options)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
  });

  it('checks the signature of a member the operator registered on a single-label domain (the demo\'s alice@localhost)', async () => {
    // `npm start` registers alice@localhost; the reader must still find her key, or every demo post reads "not checked".
    const { w } = await archiveWorld(LIST, await makeKey('alice@localhost'));
    await w.ok('archive.login', { list: LIST }, senders.options);
    const [view] = await w.ok('archive.open', { list: LIST, ids: [1] }, senders.options);
    expect(view!.read!.signature).toMatchObject({ status: 'verified', address: 'alice@localhost' });
  });

  it('finds the thread of a permalink by number or Message-ID; a malformed key is refused before any request', async () => {
    const { w, calls } = await archiveWorld();
    await w.ok('archive.login', { list: LIST }, senders.options);
    const t = await w.ok('archive.thread', { list: LIST, id: 2 }, senders.options);
    expect(t.messages.map((m) => [m.id, m.inReplyTo, m.references])).toEqual([[1, null, []], [2, '<r@x>', ['<r@x>']]]);
    await w.ok('archive.thread', { list: LIST, messageId: '<s@x>' }, senders.options);
    const before = calls.length;
    for (const bad of [{ id: 0 }, { id: 1.5 }, { id: -1 }, {}, { id: 1, messageId: '<s@x>' }, { messageId: 7 }]) {
      expect(await w.ask('archive.thread', { list: LIST, ...bad } as never, senders.options), JSON.stringify(bad)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    }
    expect(await w.ask('archive.thread', { list: LIST, messageId: 'x'.repeat(999) }, senders.options)).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    expect(calls.length).toBe(before);
  });

  it('a reply to an archived message is decrypted again here and waits for the next composer of any tab, with quote and threading', async () => {
    const { w, calls, post } = await archiveWorld();
    await w.ok('archive.login', { list: LIST }, senders.options);
    expect(await w.ask('archive.reply', { list: LIST, id: 1, to: 'list' }, senders.options)).toMatchObject({ ok: false, error: { code: 'LIST_NOT_PINNED' } });
    await w.store.putList({ ...(await w.store.getList(LIST))!, state: 'member' });
    const before = calls.length;
    for (const bad of [{ id: 0, to: 'list' }, { id: 1.5, to: 'list' }, { id: 1, to: 'everyone' }]) {
      expect(await w.ask('archive.reply', { list: LIST, ...bad } as never, senders.options), JSON.stringify(bad)).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    }
    expect(calls.length).toBe(before); // refused before any request
    // Only the archive page may ask: not a reader or composer frame, not a content script.
    for (const s of [senders.reader(7), senders.composer(7), senders.content(7)]) expect(await w.ask('archive.reply', { list: LIST, id: 1, to: 'list' }, s)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ask('archive.reply', { list: LIST, id: 2, to: 'list' }, senders.options)).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });

    expect(await w.ok('archive.reply', { list: LIST, id: 1, to: 'list' }, senders.options)).toMatchObject({ to: 'list', list: LIST, author: alice.address, subject: 'Re: Archived' });
    // The next composer of any tab takes it, once.
    const composeId = (await w.ok('content.compose', {}, senders.content(9))).composeId;
    const start = await w.ok('composer.start', { composeId }, senders.composer(9));
    expect(start.reply).toMatchObject({ to: 'list', list: LIST, subject: 'Re: Archived', inReplyTo: post.messageId });
    expect(start.reply!.quoted).toMatch(/alice@example\.org wrote:\n> from the archive\n\n$/);
    const later = (await w.ok('content.compose', {}, senders.content(10))).composeId;
    expect((await w.ok('composer.start', { composeId: later }, senders.composer(10))).reply).toBeNull();
    await w.ok('composer.send', { composeId, list: LIST, subject: 'Re: Archived', text: `${start.reply!.quoted}agreed` }, senders.composer(9));
    const { readMessage, fromUtf8 } = await import('../../shared/index.ts');
    const toList = await readMessage(w.pushed.at(-1)!.armored, { privateKey: listKey.privateKey, senderKeys: [] });
    expect(toList.message.inReplyTo).toBe(post.messageId);
    expect(fromUtf8(toList.content)).toContain(`References: ${post.messageId}\r\n`);
    expect(w.pushed.at(-1)!.to).toBe(LIST);

    // To the author alone: Alice's key was fetched from the list and verified her signature.
    expect(await w.ok('archive.reply', { list: LIST, id: 1, to: 'author' }, senders.options)).toMatchObject({ to: 'author', author: alice.address });
    const privately = (await w.ok('content.compose', {}, senders.content(11))).composeId;
    expect((await w.ok('composer.start', { composeId: privately }, senders.composer(11))).reply).toMatchObject({ to: 'author', author: alice.address, inReplyTo: post.messageId });
    await w.ok('composer.send', { composeId: privately, list: LIST, subject: 'Re: Archived', text: 'just you' }, senders.composer(11));
    const toAlice = await readMessage(w.pushed.at(-1)!.armored, { privateKey: alice.privateKey, senderKeys: [] });
    expect(toAlice.message.to.map((m) => m.address)).toEqual([alice.address]);
    expect(toAlice.message.inReplyTo).toBe(post.messageId);

    // Unused, it lapses after ten minutes.
    await w.ok('archive.reply', { list: LIST, id: 1, to: 'list' }, senders.options);
    w.clock.now += 10 * 60_000 + 1;
    const lapsed = (await w.ok('content.compose', {}, senders.content(12))).composeId;
    expect((await w.ok('composer.start', { composeId: lapsed }, senders.composer(12))).reply).toBeNull();
  });

  it('refuses to sign a log-in statement that names another list', async () => {
    const { w, calls } = await archiveWorld('other@lists.example.org');
    expect(await w.ask('archive.login', { list: LIST }, senders.options)).toMatchObject({ ok: false, error: { code: 'SERVER_BAD_ANSWER' } });
    expect(calls.some((c) => c.endsWith('auth/login'))).toBe(false);
  });
});

describe('writing: replies, attachments, encrypted drafts', () => {
  async function memberWorld() {
    const b = await bobWorld();
    await b.w.ok('list.lookup', { address: LIST, server: SERVER }, senders.options);
    await b.w.ok('list.pin', { address: LIST, fingerprint: listKey.fingerprint }, senders.options);
    await b.w.store.putList({ ...(await b.w.store.getList(LIST))!, state: 'member' });
    return b;
  }

  /** Every record of the drafts database, as stored. */
  async function draftRecords(): Promise<unknown[]> {
    const { openDB } = await import('idb');
    const db = await openDB('letterlock-drafts');
    try {
      return db.objectStoreNames.contains('drafts') ? await db.getAll('drafts') : [];
    } finally {
      db.close();
    }
  }

  it('attachments go inside the encryption; too many, too large or unreadable ones are refused with words', async () => {
    const { w } = await memberWorld();
    const compose = async () => (await w.ok('content.compose', {}, senders.content(7))).composeId;
    const file = (name: string, bytes: Uint8Array) => ({ filename: name, contentType: 'text/plain', base64: toBase64(bytes) });
    const base = { list: LIST, subject: 'Files', text: 'see attached' };
    const many = Array.from({ length: 11 }, (_, i) => file(`f${i}.txt`, new Uint8Array([65])));
    expect(await w.ask('composer.send', { composeId: await compose(), ...base, attachments: many }, senders.composer(7))).toMatchObject({ ok: false, error: { code: 'TOO_MANY_ATTACHMENTS' } });
    // The list takes posts up to 1 MB: 800 KB of files do not fit once encoded and armored.
    const big = await w.ask('composer.send', { composeId: await compose(), ...base, attachments: [file('big.bin', new Uint8Array(800_000))] }, senders.composer(7));
    expect(big).toMatchObject({ ok: false, error: { code: 'ATTACHMENTS_TOO_LARGE' } });
    expect((big as { error: { message: string } }).error.message).toContain(LIST);
    expect(await w.ask('composer.send', { composeId: await compose(), ...base, attachments: [{ filename: 'x', contentType: 'text/plain', base64: '%%%' }] }, senders.composer(7))).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    await w.ok('composer.send', { composeId: await compose(), ...base, attachments: [file('notes.txt', new TextEncoder().encode('attached words'))] }, senders.composer(7));
    const armored = w.pushed.at(-1)!.armored;
    expect(armored).not.toContain('attached words');
    const { readMessage } = await import('../../shared/index.ts');
    const read = await readMessage(armored, { privateKey: listKey.privateKey, senderKeys: [] });
    expect(read.message.attachments.map((a) => [a.filename, new TextDecoder().decode(a.content)])).toEqual([['notes.txt', 'attached words']]);
  });

  it('a reply carries the quote and the threading ids; the draft is kept only encrypted, restored, and deleted on send', async () => {
    const { w, bobPublic } = await memberWorld();
    const post = await composePost({ message: { subject: 'Plans', from: { address: alice.address, name: 'Alice' }, to: [{ address: LIST }], text: 'line one\n> older\nline two' }, senderKey: alice.privateKey, listKey: bobPublic as openpgp.PublicKey });
    const blockId = (await w.ok('content.stash', { armored: post.armored }, senders.content(7))).blockId;
    await w.ok('reader.open', { blockId }, senders.reader(7));
    // Alice's key is not known (the fake server has no member keys): no private reply.
    expect(await w.ask('reader.reply', { blockId, to: 'author' }, senders.reader(7))).toMatchObject({ ok: false, error: { code: 'NO_AUTHOR_KEY' } });
    expect(await w.ask('reader.reply', { blockId, to: 'list' }, senders.reader(8))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await w.ok('reader.reply', { blockId, to: 'list' }, senders.reader(7))).toEqual({ opened: true });
    expect(w.checks.at(-1)).toEqual({ letterlock: 1, type: 'open-composer' });
    // The next composer of that tab (not of another tab) takes the reply.
    const other = (await w.ok('content.compose', {}, senders.content(8))).composeId;
    expect((await w.ok('composer.start', { composeId: other }, senders.composer(8))).reply).toBeNull();
    const composeId = (await w.ok('content.compose', {}, senders.content(7))).composeId;
    const start = await w.ok('composer.start', { composeId }, senders.composer(7));
    expect(start.reply).toMatchObject({ to: 'list', list: LIST, subject: 'Re: Plans', inReplyTo: post.messageId });
    expect(start.reply!.quoted).toMatch(/^On .+, Alice <alice@example\.org> wrote:\n> line one\n>> older\n> line two\n\n$/);
    expect(await w.ask('composer.start', { composeId }, senders.composer(8))).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

    const text = `${start.reply!.quoted}my answer DRAFTMARK`;
    await w.ok('composer.draft.save', { composeId, list: LIST, subject: 'Re: Plans', text }, senders.composer(7));
    const stored = JSON.stringify(await draftRecords());
    for (const plain of ['DRAFTMARK', 'Plans', 'line one', post.messageId.slice(1, -1)]) expect(stored).not.toContain(plain);
    // Restored for the same reply only.
    const again = (await w.ok('content.compose', {}, senders.content(7))).composeId;
    expect((await w.ok('composer.start', { composeId: again }, senders.composer(7))).draft).toBeNull(); // a new post: another slot
    expect((await w.ok('composer.start', { composeId }, senders.composer(7))).draft).toMatchObject({ list: LIST, subject: 'Re: Plans', text });

    await w.ok('composer.send', { composeId, list: LIST, subject: 'Re: Plans', text }, senders.composer(7));
    expect(await draftRecords()).toEqual([]);
    const { readMessage, fromUtf8 } = await import('../../shared/index.ts');
    const read = await readMessage(w.pushed.at(-1)!.armored, { privateKey: listKey.privateKey, senderKeys: [] });
    expect(read.message.inReplyTo).toBe(post.messageId);
    expect(fromUtf8(read.content)).toContain(`References: ${post.messageId}\r\n`);
    expect(w.pushed.at(-1)!.to).toBe(LIST);
  });
});
